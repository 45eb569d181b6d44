"""Reading the state DB: a video as stages see it (VideoRecord), its recipe, stage rows, the funnel, the backlog
and why a row stands where it does. Nothing here writes."""


from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from operator import attrgetter
from typing import Iterable, Iterator

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from lectern.recipes import STAGES
from lectern.safe_text import printable
from lectern.stage_types import VideoRecord
from lectern.state.models import (
    FAILED,
    REJECTED,
    RUNNING,
    SUCCEEDED,
    KnowledgePoint,
    Subject,
    Video,
    VideoSource,
    VideoStage,
    utcnow,
)
from lectern.state.queries import TRANSIENT, awaiting_scores, ready_to_claim, scoped, subject_filter


def video_record(session: Session, video_id: str) -> VideoRecord:
    video = session.get(Video, video_id)
    if video is None:
        raise KeyError(f"unknown video {video_id!r}")
    links = session.execute(
        select(Subject.name, KnowledgePoint.name, VideoSource.relevance, VideoSource.llm_score, KnowledgePoint.query,
               KnowledgePoint.search_metrics, KnowledgePoint.vocabulary, KnowledgePoint.urls, Subject.prefilter,
               KnowledgePoint.videos_dir)
        .select_from(VideoSource)
        .join(KnowledgePoint, VideoSource.point_id == KnowledgePoint.id)
        .join(Subject, KnowledgePoint.subject_id == Subject.id)
        .where(VideoSource.video_id == video_id)
        .order_by(VideoSource.rank)
    ).all()
    # By the primary key's prefix alone, its few rows filtered here: with the status in the query, SQLite chose
    # the status index, every succeeded row of the DB (227 ms a call at 460K rows).
    stages = [row for row in session.scalars(select(VideoStage).where(VideoStage.video_id == video_id))
              if row.status == SUCCEEDED]
    return VideoRecord(
        id=video.id, url=video.url, title=video.title or "", description=video.description or "",
        duration_s=video.duration_s, height=video.height, language=video.language, live_status=video.live_status,
        license=video.license,
        subjects=tuple(dict.fromkeys(link[0] for link in links)),
        points=tuple(dict.fromkeys(link[1] for link in links)),
        queries=tuple(dict.fromkeys(link[4] for link in links)),
        vocabulary=tuple(dict.fromkeys(word for link in links for word in link[6] or ())),
        labels=tuple(dict.fromkeys(link[1] for link in links if _from_manifest(link[5]))),
        cover_url=video.cover_url,
        metadata_relevance=max((link[2] for link in links if link[2] is not None), default=None),
        metadata_llm_score=max((link[3] for link in links if link[3] is not None), default=None),
        metadata_judged=bool(links) and all(_judged_on_metadata(link[7] or link[9], link[5], link[8])
                                            for link in links),
        local_roots=tuple(dict.fromkeys(link[9] for link in links if link[9])),
        artifacts={row.stage: dict(row.artifacts or {}) for row in stages},
    )


def _from_manifest(search_metrics: dict | None) -> bool:
    """Whether a point's videos came from a URL manifest (import_manifest records its path as the search)."""
    return "manifest" in (search_metrics or {})


def _judged_on_metadata(listed_by_hand, search_metrics: dict | None, prefilter: bool | None) -> bool:
    """Whether the metadata relevance filter judges a video on this link: a search result, unless its subject
    says `prefilter: false`; a video listed by hand (the point's URLs or local folder, a manifest row), only with
    `prefilter: true`."""
    listed = bool(listed_by_hand) or _from_manifest(search_metrics)
    return prefilter if prefilter is not None else not listed


def subject_recipe(session: Session, subject: str) -> str:
    """What the subject's videos go through (its YAML's recipe, as discovery recorded it)."""
    recipe = session.scalar(select(Subject.recipe).where(Subject.name == subject))
    if recipe is None:
        raise KeyError(f"unknown subject {subject!r}")
    return recipe


def stage_rows(session: Session, video_ids: Iterable[str] | None = None, subject: str | None = None,
               stage: str | None = None) -> list[VideoStage]:
    """The rows, each video's in stage order, videos in id order (Python's, whatever the database collates by)."""
    return sorted(iter_stage_rows(session, video_ids, subject, stage), key=attrgetter("video_id"))


STREAM_BATCH = 2000  # rows fetched at a time by iter_stage_rows


def iter_stage_rows(session: Session, video_ids: Iterable[str] | None = None, subject: str | None = None,
                    stage: str | None = None) -> Iterator[VideoStage]:
    """stage_rows, STREAM_BATCH rows fetched at a time: a subject of the paper's 460K rows is never in memory."""
    query = select(VideoStage)
    if video_ids is not None:
        query = query.where(VideoStage.video_id.in_(list(video_ids)))
    if subject:
        query = query.where(subject_filter(subject))
    if stage:
        query = query.where(VideoStage.stage == stage)
    rows = session.scalars(query.order_by(VideoStage.video_id).execution_options(yield_per=STREAM_BATCH))
    for _, group in groupby(rows, key=attrgetter("video_id")):
        yield from in_stage_order(group)


_STAGE_ORDER = {name: i for i, name in enumerate(STAGES)}


def in_stage_order(rows: Iterable) -> list:
    """Rows (anything with a `stage`) in pipeline order; a stage no recipe knows last."""
    return sorted(rows, key=lambda row: _STAGE_ORDER.get(row.stage, len(STAGES)))


def needing_attention(session: Session, subject: str | None, limit: int) -> tuple[list[VideoStage], int]:
    """The rows that need a look (failed, rejected, running), by video: the first `limit`, and how many more."""
    wanted = scoped(select(VideoStage).where(VideoStage.status.in_([FAILED, REJECTED, RUNNING])), None, subject)
    rows = list(session.scalars(wanted.order_by(VideoStage.video_id, VideoStage.stage).limit(limit)))
    total = session.scalar(select(func.count()).select_from(wanted.subquery())) if len(rows) == limit else len(rows)
    return rows, total - len(rows)


@dataclass(frozen=True)
class Backlog:
    """Where a subject's videos stand for a backfill: what a phase run would take now (`ready`), what is in
    flight or waiting out a retry backoff (`waiting`), and how many rows are finished for good (`finished`)."""

    ready: dict[str, list[str]]
    waiting: dict[str, list[str]]
    finished: int
    failed: list[tuple[str, str, str, str]]  # (video, stage, error class, message) of permanent failures

    @property
    def drained(self) -> bool:
        return not self.ready and not self.waiting


def backlog(session: Session, max_attempts: int, subject: str | None = None,
            await_scores: tuple[bool, bool] = (False, False)) -> Backlog:
    now = utcnow()
    ready_keys = set(session.execute(scoped(
        select(VideoStage.stage, VideoStage.video_id).where(ready_to_claim(now, max_attempts)), None, subject)).all())
    scoring = set(session.execute(scoped(
        select(VideoStage.stage, VideoStage.video_id).where(awaiting_scores(*await_scores)), None, subject)).all())
    ready: dict[str, list[str]] = {}
    waiting: dict[str, list[str]] = {}
    finished, failed = 0, []
    for row in stage_rows(session, subject=subject):
        key = (row.stage, row.video_id)
        if key in ready_keys:  # a download waiting for discovery's metadata scores is in flight, not ready
            (waiting if key in scoring else ready).setdefault(row.stage, []).append(row.video_id)
        elif row.status == RUNNING or (row.status == FAILED and row.error_kind == TRANSIENT
                                       and row.attempts < max_attempts):
            waiting.setdefault(row.stage, []).append(row.video_id)
        else:
            finished += 1
            if row.status == FAILED:
                failed.append((row.video_id, row.stage, row.error_class or "", row.error_message or ""))
    return Backlog(ready=ready, waiting=waiting, finished=finished, failed=failed)


def why(row: VideoStage) -> str:
    """Why a row stands where it does: the filter that rejected it, or the error class and message (as a person
    may read it: rows recorded before messages were cleaned may hold terminal escapes)."""
    return printable(row.reason or (f"{row.error_class}: {row.error_message}" if row.error_class else ""))


def rows_since(session: Session, subject: str, stage: str, since: datetime) -> list[VideoStage]:
    """The subject's rows of `stage` claimed at or after `since` (a run's, for its progress); of the first stage,
    also those created since (the videos a discovery found)."""
    started = VideoStage.started_at >= since
    condition = or_(started, VideoStage.created_at >= since) if stage == STAGES[0] else started
    query = select(VideoStage).where(VideoStage.stage == stage, condition, subject_filter(subject))
    return list(session.scalars(query.order_by(VideoStage.video_id)))


def furthest_rows(session: Session, subject: str | None = None,
                  video_ids: Iterable[str] | None = None) -> dict[str, VideoStage]:
    """Each video's row of the furthest stage it reached (where it is now, or where it stopped)."""
    # rows come in stage order: the last one per video wins
    return {row.video_id: row for row in stage_rows(session, video_ids=video_ids, subject=subject)}


def funnel(session: Session, subject: str | None = None) -> dict[str, dict[str, int]]:
    """stage -> status -> number of videos."""
    query = select(VideoStage.stage, VideoStage.status, func.count()).group_by(VideoStage.stage, VideoStage.status)
    if subject:
        query = query.where(subject_filter(subject))
    result: dict[str, dict[str, int]] = {stage: {} for stage in STAGES}
    for stage, status, count in session.execute(query):
        result.setdefault(stage, {})[status] = count
    return result
