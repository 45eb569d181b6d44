"""The conditions the state modules share: which rows are ready to claim, which a caller's scope selects, which
wait on metadata scores, and a video's recipe. Nothing here writes."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm import Session

from lectern.recipes import DEFAULT_RECIPE, RECIPES
from lectern.state.models import (
    FAILED,
    PENDING,
    RUNNING,
    KnowledgePoint,
    Subject,
    VideoSource,
    VideoStage,
)

TRANSIENT, PERMANENT = "transient", "permanent"  # how a failure's error class is retried


def video_recipe(session: Session, video_id: str) -> str:
    """What the video goes through: its subjects' recipe; where subjects that found it differ, the first of theirs
    in lectern.recipes.RECIPES (a video found for a textbook subject too is never cut short of it)."""
    return video_recipes(session, [video_id])[video_id]


IN_LIST = 500  # video ids bound into one query at most (SQLite takes 32,766 parameters)


def video_recipes(session: Session, video_ids: Sequence[str]) -> dict[str, str]:
    """video_recipe of each video, IN_LIST videos a query."""
    found: dict[str, set[str]] = {}
    for begin in range(0, len(video_ids), IN_LIST):
        for video_id, recipe in session.execute(
                select(VideoSource.video_id, Subject.recipe)
                .join(KnowledgePoint, VideoSource.point_id == KnowledgePoint.id)
                .join(Subject, KnowledgePoint.subject_id == Subject.id)
                .where(VideoSource.video_id.in_(video_ids[begin:begin + IN_LIST]))):
            found.setdefault(video_id, set()).add(recipe)
    return {video_id: next((name for name in RECIPES if name in found.get(video_id, ())), DEFAULT_RECIPE)
            for video_id in video_ids}


def subject_filter(subject: str):
    """The rows of the subject's videos, its videos listed once: for a query that reads them all."""
    return VideoStage.video_id.in_(
        select(VideoSource.video_id).join(KnowledgePoint).join(Subject).where(Subject.name == subject)
    )


def subject_row_by_row(subject: str):
    """The rows of the subject's videos, each row looked up on its own (a correlated EXISTS): for a query that
    reads a few rows in index order, as a claim does (SQLite would list the subject's 77K videos first, every
    time)."""
    return (select(VideoSource.video_id).join(KnowledgePoint).join(Subject)
            .where(VideoSource.video_id == VideoStage.video_id, Subject.name == subject).exists())


def scoped(query, video_ids: Sequence[str] | None, subject: str | None, row_by_row: bool = False):
    """`query` limited to the given videos and/or a subject's videos (neither: no limit); `row_by_row`: the
    subject's test made per row (subject_row_by_row)."""
    if video_ids:
        query = query.where(VideoStage.video_id.in_(list(video_ids)))
    if subject:
        query = query.where(subject_row_by_row(subject) if row_by_row else subject_filter(subject))
    return query


def claimable_kinds(now: datetime, max_attempts: int) -> list:
    """What a claim may take now, one condition per status: pending; leased past expiry; a transient failure past
    its backoff. Each fixes the status, so the claim index hands its rows in created order."""
    return [
        VideoStage.status == PENDING,
        and_(VideoStage.status == RUNNING, VideoStage.lease_expires_at < now),
        and_(
            VideoStage.status == FAILED,
            VideoStage.error_kind == TRANSIENT,
            VideoStage.attempts < max_attempts,
            or_(VideoStage.retry_at.is_(None), VideoStage.retry_at <= now),
        ),
    ]


def ready_to_claim(now: datetime, max_attempts: int):
    """Rows a claim would take now: pending, leased past expiry, or a transient failure past its backoff."""
    return or_(*claimable_kinds(now, max_attempts))


def missing_scores(relevance: bool, llm: bool):
    """The condition on a search result that lacks a score asked for (None: no score is asked for)."""
    wanted = (([VideoSource.relevance.is_(None)] if relevance else [])
              + ([VideoSource.llm_response.is_(None)] if llm else []))
    return or_(*wanted) if wanted else None


def awaiting_scores(relevance: bool, llm: bool):
    """Download rows of videos with a search result not scored yet: the pre-download filter must not judge them
    before discovery has scored them (a scheduled download run can fall between a search and its scoring)."""
    missing = missing_scores(relevance, llm)
    if missing is None:
        return false()
    return and_(VideoStage.stage == "download", VideoStage.video_id.in_(select(VideoSource.video_id).where(missing)))
