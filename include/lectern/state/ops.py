"""Every state transition of Lectern, in one module. Nothing else writes a status.

A video-stage row moves pending -> running (claimed, with a lease) -> succeeded | rejected | failed.
A failed row whose error is transient is claimable again after its backoff, until attempts run out.
Succeeding in one stage makes the next stage's row pending.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Sequence

from sqlalchemy import and_, delete, false, func, or_, select, update
from sqlalchemy.orm import Session

from lectern.recipes import STAGES, next_stage, stages_after
from lectern.safe_text import printable
from lectern.stage_types import VideoRecord
from lectern.state.models import (
    FAILED,
    FORGOTTEN,
    PENDING,
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
from lectern.store import hashed_id

TRANSIENT, PERMANENT = "transient", "permanent"


class NotClaimable(Exception):
    """The video-stage is not in a state this caller may run (already done, leased by another run, ...)."""


class LeaseLost(Exception):
    """The caller's lease expired and another run took the video-stage; its result is not recorded."""


def video_recipe(session: Session, video_id: str) -> str:
    """What the video goes through: video-text pairs when every subject that found it makes pairs, else the
    textbook (a video found for a textbook subject too is never cut short of it)."""
    recipes = set(session.scalars(
        select(Subject.recipe).join(KnowledgePoint, KnowledgePoint.subject_id == Subject.id)
        .join(VideoSource, VideoSource.point_id == KnowledgePoint.id).where(VideoSource.video_id == video_id)))
    return "pairs" if recipes == {"pairs"} else "textbook"


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment


# --- taxonomy and discovery -------------------------------------------------------------------


@dataclass(frozen=True)
class PointSpec:
    path: str
    name: str
    query: str
    urls: tuple[str, ...] = ()
    vocabulary: tuple[str, ...] = ()  # words of the point's lectures (jargon), given to Whisper as its prompt
    videos_dir: str | None = None  # a local folder (or glob), absolute: its files are the point's videos


def sync_subject(session: Session, subject: str, points: Sequence[PointSpec], recipe: str = "textbook",
                 prefilter: bool | None = None) -> list[int]:
    """Create or update a subject, its recipe, its `prefilter` choice and its knowledge points; returns the ids of
    all its points."""
    row = session.scalar(select(Subject).where(Subject.name == subject))
    if row is None:
        row = Subject(name=subject, recipe=recipe)
        session.add(row)
        session.flush()
    row.recipe, row.prefilter = recipe, prefilter
    existing = {p.path: p for p in session.scalars(select(KnowledgePoint).where(KnowledgePoint.subject_id == row.id))}
    ids = []
    for spec in points:
        point = existing.get(spec.path)
        if point is None:
            point = KnowledgePoint(subject_id=row.id, path=spec.path, name=spec.name, query=spec.query,
                                   urls=list(spec.urls), vocabulary=list(spec.vocabulary), videos_dir=spec.videos_dir,
                                   search_metrics={})
            session.add(point)
            session.flush()
        point.vocabulary = list(spec.vocabulary)  # not a different search: nothing to run again
        if (point.query, list(point.urls or []), point.videos_dir) != (spec.query, list(spec.urls), spec.videos_dir):
            # A changed query is a different search: run it again.
            point.query, point.urls, point.name, point.searched_at = spec.query, list(spec.urls), spec.name, None
            point.videos_dir = spec.videos_dir
        ids.append(point.id)
    return ids


def points_to_search(session: Session, subject: str, force: bool = False) -> list[tuple[int, str]]:
    """(id, path) of the subject's knowledge points not searched yet (all of them with `force`). A point with a
    local folder is listed every time, so files added to the folder are found; those already known stay as they are."""
    query = (select(KnowledgePoint.id, KnowledgePoint.path).join(Subject).where(Subject.name == subject)
             .order_by(KnowledgePoint.id))
    if not force:
        query = query.where(or_(KnowledgePoint.searched_at.is_(None), KnowledgePoint.videos_dir.is_not(None)))
    return [(point_id, path) for point_id, path in session.execute(query)]


@dataclass(frozen=True)
class FoundVideo:
    id: str
    url: str
    title: str = ""
    description: str = ""
    duration_s: float | None = None
    language: str | None = None
    extractor: str | None = None
    live_status: str | None = None
    license: str | None = None
    cover_url: str | None = None
    height: int | None = None  # the picture's, in pixels, where the metadata says


def _own_id(session: Session, item: FoundVideo, taken: dict[str, tuple[int, FoundVideo]]) -> FoundVideo:
    """A local file (a file: URL) whose id, its file name, is already another file's, in this search or in the
    state DB, gets the id with a short hash of its URL added, so two lectures named intro.mp4 stay two videos. The
    first file keeps the plain name, and a file found again keeps the id it got."""
    earlier = taken.get(item.id)
    url = earlier[1].url if earlier else session.scalar(select(Video.url).where(Video.id == item.id))
    if url is None or url == item.url:
        return item
    return replace(item, id=hashed_id(item.id, item.url))


def _insert_if_new(session: Session, model, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING: True when the row is new. Concurrent searches may find the same video;
    the second waits for the first's commit and then finds the row there, instead of failing on the key."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - Lectern's state DB is Postgres or SQLite
        raise NotImplementedError(f"state DB dialect {dialect!r}")
    return session.execute(insert(model).values(**values).on_conflict_do_nothing()).rowcount == 1


def record_search(session: Session, point_id: int, found: Sequence[FoundVideo],
                  metrics: dict[str, Any]) -> dict[str, int]:
    """Store a point's search results: new videos get a pending download; known ones just gain a link."""
    first: dict[str, tuple[int, FoundVideo]] = {}
    for rank, item in enumerate(found, start=1):
        if item.url.startswith("file:"):
            item = _own_id(session, item, first)
        first.setdefault(item.id, (rank, item))
    new = linked = 0
    # One order for every search, so two searches sharing videos wait on each other instead of deadlocking.
    for video_id in sorted(first):
        rank, item = first[video_id]
        if _insert_if_new(session, Video, {
                "id": item.id, "url": item.url, "title": item.title, "description": item.description,
                "duration_s": item.duration_s, "language": item.language, "extractor": item.extractor,
                "live_status": item.live_status, "license": item.license, "cover_url": item.cover_url,
                "height": item.height}):
            session.add(VideoStage(video_id=item.id, stage=STAGES[0], status=PENDING, metrics={}, artifacts={}))
            new += 1
        elif session.get(Video, video_id).forgotten_at is not None:
            continue  # taken down: found again, but neither revived nor linked
        if session.get(VideoSource, (video_id, point_id)) is None:
            session.add(VideoSource(video_id=video_id, point_id=point_id, rank=rank))
            linked += 1
        session.flush()
    point = session.get(KnowledgePoint, point_id)
    point.searched_at = utcnow()
    point.search_metrics = {**metrics, "found": len(found), "new_videos": new, "new_links": linked}
    return {"found": len(found), "new_videos": new, "new_links": linked}


@dataclass(frozen=True)
class Link:
    """One (video, knowledge point) search result to score on metadata."""

    video_id: str
    point_id: int
    point: str  # "subject: point", as the judge phrases it
    title: str
    description: str


def links_to_score(session: Session, subject: str | None = None, relevance: bool = True,
                   llm: bool = False) -> list[Link]:
    """Search results missing a score asked for: a relevance, or an LLM metadata answer."""
    missing = _missing_scores(relevance, llm)
    if missing is None:
        return []
    query = (select(VideoSource.video_id, VideoSource.point_id, Subject.name, KnowledgePoint.name, Video.title,
                    Video.description)
             .join(KnowledgePoint, VideoSource.point_id == KnowledgePoint.id)
             .join(Subject, KnowledgePoint.subject_id == Subject.id)
             .join(Video, VideoSource.video_id == Video.id)
             .where(missing).order_by(VideoSource.video_id, VideoSource.point_id))
    if subject:
        query = query.where(Subject.name == subject)
    return [Link(vid, pid, f"{subj}: {point}", title or "", desc or "")
            for vid, pid, subj, point, title, desc in session.execute(query)]


def _missing_scores(relevance: bool, llm: bool):
    """The condition on a search result that lacks a score asked for (None: no score is asked for)."""
    wanted = (([VideoSource.relevance.is_(None)] if relevance else [])
              + ([VideoSource.llm_response.is_(None)] if llm else []))
    return or_(*wanted) if wanted else None


def _awaiting_scores(relevance: bool, llm: bool):
    """Download rows of videos with a search result not scored yet: the pre-download filter must not judge them
    before discovery has scored them (a scheduled download run can fall between a search and its scoring)."""
    missing = _missing_scores(relevance, llm)
    if missing is None:
        return false()
    return and_(VideoStage.stage == "download", VideoStage.video_id.in_(select(VideoSource.video_id).where(missing)))


def record_link_scores(session: Session, scores: Sequence[tuple[Link, float | None, float | None, str | None]]) -> None:
    """Store (link, relevance, llm score, llm answer); a None leaves that value as it was."""
    for link, relevance, llm_score, llm_response in scores:
        row = session.get(VideoSource, (link.video_id, link.point_id))
        if relevance is not None:
            row.relevance = relevance
        if llm_response is not None:
            row.llm_score, row.llm_response = llm_score, llm_response


# --- claims and leases -------------------------------------------------------------------------


def _ready(now: datetime, max_attempts: int):
    """Rows a claim would take now: pending, leased past expiry, or a transient failure past its backoff."""
    return or_(
        VideoStage.status == PENDING,
        and_(VideoStage.status == RUNNING, VideoStage.lease_expires_at < now),
        and_(
            VideoStage.status == FAILED,
            VideoStage.error_kind == TRANSIENT,
            VideoStage.attempts < max_attempts,
            or_(VideoStage.retry_at.is_(None), VideoStage.retry_at <= now),
        ),
    )


def _claimable(stage: str, now: datetime, max_attempts: int):
    return and_(VideoStage.stage == stage, _ready(now, max_attempts))


def _subject_filter(subject: str):
    return VideoStage.video_id.in_(
        select(VideoSource.video_id).join(KnowledgePoint).join(Subject).where(Subject.name == subject)
    )


def reset_for_rerun(session: Session, stage: str, video_ids: Sequence[str] | None = None,
                    subject: str | None = None) -> int:
    """`force`: put finished rows of a stage back to pending (running ones keep their lease), and drop the rows of
    the stages after it."""
    if not video_ids and not subject:
        raise ValueError("force needs video ids or a subject, so a typo cannot rerun the whole corpus")
    query = select(VideoStage).where(VideoStage.stage == stage, VideoStage.status.notin_([RUNNING, FORGOTTEN]))
    rows = list(session.scalars(_scoped(query, video_ids, subject)))
    for row in rows:
        _make_pending(row)
    _invalidate_after(session, rows)
    return len(rows)


def _invalidate_after(session: Session, rows: Sequence[VideoStage]) -> None:
    """The stages after each row's stage computed their results from the one now being redone: their rows go (the
    next succeeded run of this stage opens the next one again), so a release leaves the video out until it is
    through again, no later stage reads what the rerun replaces, and a later stage still running loses its
    lease (its writes are refused). Their artifacts stay in the store until their own reruns overwrite them."""
    for row in rows:
        later = stages_after(row.stage, video_recipe(session, row.video_id))
        if later:
            session.execute(delete(VideoStage).where(VideoStage.video_id == row.video_id,
                                                     VideoStage.stage.in_(later), VideoStage.status != FORGOTTEN))


def _scoped(query, video_ids: Sequence[str] | None, subject: str | None):
    """`query` limited to the given videos and/or a subject's videos (neither: no limit)."""
    if video_ids:
        query = query.where(VideoStage.video_id.in_(list(video_ids)))
    if subject:
        query = query.where(_subject_filter(subject))
    return query


def _make_pending(row: VideoStage) -> None:
    row.status, row.attempts, row.retry_at = PENDING, 0, None
    row.error_class = row.error_kind = row.error_message = row.reason = None


def reset_stale(session: Session, stage: str, current_version: str, video_ids: Sequence[str] | None = None,
                subject: str | None = None) -> list[str]:
    """`stale_only`: put back to pending the finished results (succeeded or rejected) of a stage that were computed
    with another version or other settings than `current_version`, and drop the rows of the stages after them (they
    follow again when the rerun succeeds)."""
    query = select(VideoStage).where(
        VideoStage.stage == stage, VideoStage.status.in_([SUCCEEDED, REJECTED]),
        or_(VideoStage.version.is_(None), VideoStage.version != current_version))
    rows = list(session.scalars(_scoped(query, video_ids, subject)))
    for row in rows:
        _make_pending(row)
    _invalidate_after(session, rows)
    return [row.video_id for row in rows]


def claim_videos(session: Session, stage: str, owner: str, limit: int, lease_seconds: int, max_attempts: int,
                 subject: str | None = None, video_ids: Sequence[str] | None = None,
                 await_scores: tuple[bool, bool] = (False, False)) -> list[str]:
    """Lease up to `limit` ready videos of `stage` to `owner`; concurrent claimers never get the same one.
    `await_scores` (relevance, LLM): downloads wait until discovery has scored their search results."""
    now = utcnow()
    query = _scoped(select(VideoStage).where(_claimable(stage, now, max_attempts), ~_awaiting_scores(*await_scores)),
                    video_ids, subject)
    query = query.order_by(VideoStage.created_at, VideoStage.video_id).limit(limit)
    # Postgres: SKIP LOCKED lets concurrent claimers pass each other's rows. SQLite ignores it and
    # serialises writers instead.
    rows = list(session.scalars(query.with_for_update(skip_locked=True)))
    for row in rows:
        _lease(row, owner, now, lease_seconds)
    session.flush()
    return [row.video_id for row in rows]


def _lease(row: VideoStage, owner: str, now: datetime, lease_seconds: int) -> None:
    row.status = RUNNING
    row.lease_owner = owner
    row.lease_token = uuid.uuid4().hex
    row.lease_expires_at = now + timedelta(seconds=lease_seconds)
    row.attempts = (row.attempts or 0) + 1
    row.started_at = now
    row.finished_at = None


def claim_one(session: Session, video_id: str, stage: str, owner: str, lease_seconds: int, max_attempts: int,
              run_id: str | None = None, map_index: int | None = None) -> VideoStage:
    """Take (or confirm) the lease of one video-stage before running it.

    A row already leased to `owner` (by the phase's claim task) is kept as is; a claimable one is leased now;
    anything else raises NotClaimable with the reason.
    """
    now = utcnow()
    row = session.scalar(
        select(VideoStage).where(VideoStage.video_id == video_id, VideoStage.stage == stage).with_for_update()
    )
    if row is None:
        raise NotClaimable(f"{video_id}: no {stage} row (has the previous stage succeeded?)")
    leased_to_me = row.status == RUNNING and row.lease_owner == owner and _aware(row.lease_expires_at) > now
    # Airflow retrying its own task has already waited its retry delay: don't make it wait for ours too.
    retry_of_same_run = (row.status == FAILED and row.error_kind == TRANSIENT and row.attempts < max_attempts
                         and run_id is not None and row.run_id == run_id)
    if retry_of_same_run:
        _lease(row, owner, now, lease_seconds)
    elif leased_to_me:
        # The phase's claim task leased it to this run; this try takes it with a token of its own, so an earlier
        # try of the same task (same owner) that is still running somewhere can no longer write.
        row.lease_token = uuid.uuid4().hex
        row.lease_expires_at = now + timedelta(seconds=lease_seconds)
    else:
        claimable = session.scalar(
            select(func.count()).select_from(VideoStage).where(
                VideoStage.video_id == video_id, _claimable(stage, now, max_attempts)
            )
        )
        if not claimable:
            holder = f" (leased to {row.lease_owner})" if row.status == RUNNING else ""
            raise NotClaimable(f"{video_id}: {stage} is {row.status}{holder}; use --force to rerun")
        _lease(row, owner, now, lease_seconds)
    row.run_id, row.map_index = run_id, map_index
    session.flush()
    return row


def release_expired_leases(session: Session, max_attempts: int, stage: str | None = None) -> list[str]:
    """Running rows whose lease ran out become LeaseExpired failures: transient (claimable again) while attempts
    remain, permanent once the last one has expired."""
    now = utcnow()
    query = select(VideoStage).where(VideoStage.status == RUNNING, VideoStage.lease_expires_at < now)
    if stage:
        query = query.where(VideoStage.stage == stage)
    rows = list(session.scalars(query.with_for_update(skip_locked=True)))
    for row in rows:
        _release(row, "LeaseExpired", f"lease of {row.lease_owner} expired at {row.lease_expires_at}", max_attempts,
                 now)
    return [row.video_id for row in rows]


def release_interrupted(session: Session, stage: str, owner_prefix: str, since: datetime,
                        max_attempts: int) -> list[str]:
    """Running rows of `stage` claimed since `since` by an owner whose name starts with `owner_prefix`, a run
    known to be dead (a killed `lectern run`): claimable again now, as an expired lease would be later."""
    now = utcnow()
    rows = list(session.scalars(select(VideoStage).where(
        VideoStage.status == RUNNING, VideoStage.stage == stage, VideoStage.lease_owner.startswith(owner_prefix),
        VideoStage.started_at >= since).with_for_update(skip_locked=True)))
    for row in rows:
        _release(row, "Interrupted", f"the run of {row.lease_owner} was interrupted", max_attempts, now)
    return [row.video_id for row in rows]


def _release(row: VideoStage, error_class: str, message: str, max_attempts: int, now: datetime) -> None:
    """A running row whose run is gone: a transient failure, claimable again, while attempts remain."""
    _finish(row, FAILED, now)
    row.error_class = error_class
    row.error_kind = TRANSIENT if (row.attempts or 0) < max_attempts else PERMANENT
    attempt = "" if row.error_kind == TRANSIENT else f" (attempt {row.attempts} of {max_attempts})"
    row.error_message = message + attempt
    row.retry_at = None
    row.lease_owner = row.lease_expires_at = row.lease_token = None


# --- outcomes ----------------------------------------------------------------------------------


def _owned_row(session: Session, video_id: str, stage: str, owner: str, token: str | None) -> VideoStage:
    """The row, locked, if `owner` (and, when given, the claim with `token`) still holds its lease."""
    row = session.scalar(
        select(VideoStage).where(VideoStage.video_id == video_id, VideoStage.stage == stage).with_for_update()
    )
    if row is None or row.status != RUNNING or row.lease_owner != owner or (token and row.lease_token != token):
        raise LeaseLost(f"{video_id}: {stage} is no longer leased to {owner}"
                        + (" (another claim took it)" if row is not None and row.lease_owner == owner else ""))
    return row


def _holding(video_id: str, stage: str, token: str):
    return and_(VideoStage.video_id == video_id, VideoStage.stage == stage, VideoStage.status == RUNNING,
                VideoStage.lease_token == token)


def renew_lease(session: Session, video_id: str, stage: str, token: str, lease_seconds: int) -> bool:
    """The heartbeat: extend the claim's lease by `lease_seconds` from now; False if the claim no longer holds it."""
    renewed = session.execute(update(VideoStage).where(_holding(video_id, stage, token))
                              .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds)))
    return renewed.rowcount == 1


def check_lease(session: Session, video_id: str, stage: str, token: str) -> None:
    """Raise LeaseLost unless the claim with `token` still holds the video-stage (before each artifact write)."""
    holds = session.scalar(select(func.count()).select_from(VideoStage).where(_holding(video_id, stage, token)))
    if not holds:
        raise LeaseLost(f"{video_id}: {stage} is no longer leased to this run (expired and taken by another, or "
                        "taken down); its writes are refused")


def _finish(row: VideoStage, status: str, now: datetime) -> None:
    row.status = status
    row.finished_at = now
    started = _aware(row.started_at)
    row.seconds = (now - started).total_seconds() if started else None


def mark_succeeded(session: Session, video_id: str, stage: str, owner: str, artifacts: dict[str, str],
                   metrics: dict[str, Any], version: str | None = None, token: str | None = None,
                   config: dict[str, Any] | None = None) -> None:
    """Record a result, with its version and the settings behind it (`config`)."""
    now = utcnow()
    row = _owned_row(session, video_id, stage, owner, token)
    _finish(row, SUCCEEDED, now)
    row.artifacts, row.metrics, row.version, row.config = dict(artifacts), dict(metrics), version, config
    row.error_class = row.error_kind = row.error_message = row.reason = None
    row.lease_owner = row.lease_expires_at = row.lease_token = None
    following = next_stage(stage, video_recipe(session, video_id))
    if following:
        successor = session.get(VideoStage, (video_id, following))
        if successor is None:
            session.add(VideoStage(video_id=video_id, stage=following, status=PENDING, metrics={}, artifacts={}))
        elif successor.status != RUNNING:
            # New upstream output: the next stage's result is stale.
            successor.status, successor.attempts, successor.retry_at = PENDING, 0, None


def mark_rejected(session: Session, video_id: str, stage: str, owner: str, reason: str,
                  metrics: dict[str, Any], artifacts: dict[str, str] | None = None, version: str | None = None,
                  token: str | None = None, config: dict[str, Any] | None = None) -> None:
    row = _owned_row(session, video_id, stage, owner, token)
    _finish(row, REJECTED, utcnow())
    row.reason, row.metrics, row.artifacts, row.version = reason, dict(metrics), dict(artifacts or {}), version
    row.config = config
    row.error_class = row.error_kind = row.error_message = None
    row.lease_owner = row.lease_expires_at = row.lease_token = None


def mark_failed(session: Session, video_id: str, stage: str, owner: str, error_class: str, message: str,
                transient: bool, max_attempts: int, backoff_seconds: int, token: str | None = None) -> bool:
    """Record a failure; returns True when the video will be retried."""
    now = utcnow()
    row = _owned_row(session, video_id, stage, owner, token)
    _finish(row, FAILED, now)
    row.error_class, row.error_message = error_class, message[:4000]
    retry = transient and row.attempts < max_attempts
    row.error_kind = TRANSIENT if retry else PERMANENT
    if retry:
        delay = backoff_seconds * 2 ** (row.attempts - 1)
        row.retry_at = now + timedelta(seconds=delay * random.uniform(0.8, 1.2))
    row.lease_owner = row.lease_expires_at = row.lease_token = None
    return retry


# --- reading -----------------------------------------------------------------------------------


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
    stages = session.scalars(select(VideoStage).where(VideoStage.video_id == video_id, VideoStage.status == SUCCEEDED))
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


class StillRunning(Exception):
    """A stage of the video holds a lease: forgetting it now could leave that stage's late writes behind."""


def forget_video(session: Session, video_id: str, reason: str, force: bool = False) -> list[str]:
    """Takedown: every stage row of the video becomes `forgotten` (never claimed, never reset by force), and the
    video is marked so a later search links it without reviving it. Returns the stages it had. The caller
    removes the artifacts."""
    video = session.get(Video, video_id)
    if video is None:
        raise KeyError(f"unknown video {video_id!r}")
    now = utcnow()
    rows = list(session.scalars(select(VideoStage).where(VideoStage.video_id == video_id).with_for_update()))
    running = [r for r in rows if r.status == RUNNING and (_aware(r.lease_expires_at) or now) > now]
    if running and not force:
        raise StillRunning(f"{video_id}: {', '.join(r.stage for r in running)} is running (lease until "
                           f"{min(_aware(r.lease_expires_at) for r in running):%Y-%m-%d %H:%M} UTC); retry when "
                           "it ends, or force")
    for row in rows:
        row.status, row.reason, row.finished_at = FORGOTTEN, f"forgotten: {reason}", now
        row.lease_owner = row.lease_expires_at = row.lease_token = row.retry_at = None
        row.artifacts = {}
    video.forgotten_at, video.forgotten_reason = now, reason
    return [row.stage for row in rows]


def update_video(session: Session, video_id: str, **fields: Any) -> None:
    video = session.get(Video, video_id)
    for name, value in fields.items():
        setattr(video, name, value)


def stage_rows(session: Session, video_ids: Iterable[str] | None = None, subject: str | None = None,
               stage: str | None = None) -> list[VideoStage]:
    query = select(VideoStage)
    if video_ids is not None:
        query = query.where(VideoStage.video_id.in_(list(video_ids)))
    if subject:
        query = query.where(_subject_filter(subject))
    if stage:
        query = query.where(VideoStage.stage == stage)
    order = {name: i for i, name in enumerate(STAGES)}
    return sorted(session.scalars(query), key=lambda r: (r.video_id, order.get(r.stage, 99)))


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
    ready_keys = set(session.execute(_scoped(
        select(VideoStage.stage, VideoStage.video_id).where(_ready(now, max_attempts)), None, subject)).all())
    scoring = set(session.execute(_scoped(
        select(VideoStage.stage, VideoStage.video_id).where(_awaiting_scores(*await_scores)), None, subject)).all())
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
    query = select(VideoStage).where(VideoStage.stage == stage, condition, _subject_filter(subject))
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
        query = query.where(_subject_filter(subject))
    result: dict[str, dict[str, int]] = {stage: {} for stage in STAGES}
    for stage, status, count in session.execute(query):
        result.setdefault(stage, {})[status] = count
    return result
