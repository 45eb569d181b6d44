"""Every state transition of Lectern, in one module. Nothing else writes a status.

A video-stage row moves pending -> running (claimed, with a lease) -> succeeded | rejected | failed.
A failed row whose error is transient is claimable again after its backoff, until attempts run out.
Succeeding in one stage makes the next stage's row pending.
"""


from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from lectern.recipes import STAGES, next_stage, stages_after
from lectern.state.models import (
    FAILED,
    FORGOTTEN,
    PENDING,
    REJECTED,
    RUNNING,
    SUCCEEDED,
    Video,
    VideoStage,
    utcnow,
)
from lectern.state.queries import (
    IN_LIST,
    PERMANENT,
    TRANSIENT,
    awaiting_scores,
    claimable_kinds,
    ready_to_claim,
    scoped,
    video_recipe,
    video_recipes,
)


class NotClaimable(Exception):
    """The video-stage is not in a state this caller may run (already done, leased by another run, ...)."""


class LeaseLost(Exception):
    """The caller's lease expired and another run took the video-stage; its result is not recorded."""


def open_first_stage(session: Session, video_id: str) -> None:
    """A new video's first stage (the same in every recipe) becomes pending."""
    session.add(VideoStage(video_id=video_id, stage=STAGES[0], status=PENDING, metrics={}, artifacts={}))


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment


def _claimable(stage: str, now: datetime, max_attempts: int):
    return and_(VideoStage.stage == stage, ready_to_claim(now, max_attempts))


def reset_for_rerun(session: Session, stage: str, video_ids: Sequence[str] | None = None,
                    subject: str | None = None) -> int:
    """`force`: put finished rows of a stage back to pending (running ones keep their lease), and drop the rows of
    the stages after it."""
    if not video_ids and not subject:
        raise ValueError("force needs video ids or a subject, so a typo cannot rerun the whole corpus")
    query = select(VideoStage).where(VideoStage.stage == stage, VideoStage.status.notin_([RUNNING, FORGOTTEN]))
    rows = list(session.scalars(scoped(query, video_ids, subject)))
    for row in rows:
        _make_pending(row)
    _invalidate_after(session, rows)
    return len(rows)


def _invalidate_after(session: Session, rows: Sequence[VideoStage]) -> None:
    """The stages after each row's stage computed their results from the one now being redone: their rows go (the
    next succeeded run of this stage opens the next one again), so a release leaves the video out until it is
    through again, no later stage reads what the rerun replaces, and a later stage still running loses its
    lease (its writes are refused). Their artifacts stay in the store until their own reruns overwrite them."""
    recipes = video_recipes(session, [row.video_id for row in rows])
    by_later: dict[tuple[str, ...], list[str]] = {}
    for row in rows:
        later = tuple(stages_after(row.stage, recipes[row.video_id]))
        if later:
            by_later.setdefault(later, []).append(row.video_id)
    for later, video_ids in by_later.items():
        for begin in range(0, len(video_ids), IN_LIST):
            session.execute(delete(VideoStage).where(VideoStage.video_id.in_(video_ids[begin:begin + IN_LIST]),
                                                     VideoStage.stage.in_(later), VideoStage.status != FORGOTTEN))


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
    rows = list(session.scalars(scoped(query, video_ids, subject)))
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
    # One query per kind of claimable row (pending, lease expired, retry due), each ordered by the claim index and
    # limited, then the first `limit` of them all: a claim reads about `limit` rows whatever the table holds (one
    # query with the three ORed would sort every candidate). Postgres: SKIP LOCKED lets concurrent claimers pass
    # each other's rows. SQLite ignores it and serialises writers instead.
    rows: list[VideoStage] = []
    for kind in claimable_kinds(now, max_attempts):
        query = scoped(select(VideoStage).where(VideoStage.stage == stage, kind, ~awaiting_scores(*await_scores)),
                       video_ids, subject, row_by_row=True)
        query = query.order_by(VideoStage.created_at, VideoStage.video_id).limit(limit)
        rows += session.scalars(query.with_for_update(skip_locked=True))
    rows = sorted(rows, key=lambda row: (_aware(row.created_at), row.video_id))[:limit]
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
