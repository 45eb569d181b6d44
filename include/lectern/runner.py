"""Run one stage for one video: lease, run, record the outcome. The CLI, the local executor and the pod
all come through here (``python -m lectern stage NAME --video-id ID``).

Exit codes tell the orchestrator what happened without reading the DB: 0 the video reached succeeded or
rejected; 75 (EX_TEMPFAIL) a transient failure that will be retried; 2 a permanent failure; 3 not claimable.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import threading
import time
import traceback

from lectern.config import Settings
from lectern.errors import classify
from lectern.log_format import stage_context
from lectern.pipeline import stage_config, stage_module, stage_spec, stage_version
from lectern.safe_text import printable
from lectern.state.catalog import update_video
from lectern.state.db import session_scope
from lectern.state.reports import video_record
from lectern.state.transitions import (
    LeaseLost,
    NotClaimable,
    check_lease,
    claim_one,
    mark_failed,
    mark_rejected,
    mark_succeeded,
    renew_lease,
    reset_for_rerun,
)
from lectern.store import STALE_AFTER_S, FencedStore, Keys, check_video_id, remove_scratch, store_from_settings

EXIT_OK, EXIT_PERMANENT, EXIT_NOT_CLAIMABLE, EXIT_TRANSIENT = 0, 2, 3, 75
# A state DB restart takes seconds: recording an outcome is tried again after these pauses before giving up (the
# lease then expires and the video is reclaimed: the result is redone, never lost).
DB_RETRY_DELAYS_S = (1, 2, 4, 8, 16)
log = logging.getLogger("lectern")


def _db_away():
    """The SQLAlchemy errors of a state DB that is away (restarting, connection cut), not of a bad statement."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    return OperationalError, InterfaceError


def _tables_missing(message: str) -> bool:
    """A state DB that was never migrated: SQLite's and Postgres's words for a missing table."""
    return "no such table" in message or ("relation" in message and "does not exist" in message)


def _record(prefix: str, write) -> None:
    """Run `write` (one state DB transaction), again while the DB is unreachable."""
    for delay in (*DB_RETRY_DELAYS_S, None):
        try:
            return write()
        except _db_away() as exc:
            if delay is None:
                raise
            log.warning("%s state DB unreachable (%s); trying again in %ds", prefix,
                        str(exc.orig or exc).strip().splitlines()[0], delay)
            time.sleep(delay)


class Claim:
    """The claim one stage run holds on its video-stage (its lease token). While the stage runs, a heartbeat
    renews the lease every third of LECTERN_LEASE_SECONDS, so a long stage keeps it and a dead one loses it within
    one lease; `check` (before every artifact write) refuses once the claim is lost."""

    def __init__(self, settings: Settings, video_id: str, stage: str, token: str, prefix: str):
        self.settings, self.video_id, self.stage, self.token, self.prefix = settings, video_id, stage, token, prefix
        self.lost = False
        self._stop = threading.Event()
        # in the stage's log context: the renewal's warnings carry its video, stage and run too
        self._heart = threading.Thread(target=contextvars.copy_context().run, args=(self._beat,),
                                       name=f"lease-{video_id}-{stage}", daemon=True)

    def __enter__(self) -> "Claim":
        self._heart.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._heart.join()

    def _beat(self) -> None:
        interval = max(self.settings.lease_seconds / 3, 0.5)
        while not self._stop.wait(interval):
            try:
                with session_scope(self.settings.db_url) as session:
                    held = renew_lease(session, self.video_id, self.stage, self.token, self.settings.lease_seconds)
            except _db_away() as exc:  # the lease may run out meanwhile: then `check` refuses
                log.warning("%s lease not renewed, state DB unreachable: %s", self.prefix,
                            str(getattr(exc, "orig", None) or exc).strip().splitlines()[0])
                continue
            if not held:
                self.lost = True
                log.error("%s lease lost (taken by another run, or the video was taken down): this run's "
                          "writes are refused from now on", self.prefix)
                return

    def check(self) -> None:
        if self.lost:
            raise LeaseLost(f"{self.video_id}: {self.stage} lease lost; this run's writes are refused")

        def read() -> None:
            with session_scope(self.settings.db_url) as session:
                check_lease(session, self.video_id, self.stage, self.token)

        _record(self.prefix, read)


def default_owner() -> str:
    return f"cli:{socket.gethostname()}:{os.getpid()}"


def run_stage(stage_name: str, video_id: str, settings: Settings, owner: str | None = None, force: bool = False,
              run_id: str | None = None, map_index: int | None = None) -> int:
    """Claim, run and record one video-stage; returns an exit code (above). An unreachable state DB is transient,
    one never migrated (no tables) permanent.
    Its log records carry the video, the stage and the run (lectern.log_format)."""
    from sqlalchemy.exc import ProgrammingError

    with stage_context(video_id=video_id, stage=stage_name, run_id=run_id):
        try:
            return _run_stage(stage_name, video_id, settings, owner, force, run_id, map_index)
        except (*_db_away(), ProgrammingError) as exc:
            cause = str(exc.orig or exc).strip()
            if _tables_missing(cause):  # waiting does not make tables: no retry, the fix is said
                log.error("[%s] %s: the state DB has no Lectern tables (%s): run `lectern db upgrade`", video_id,
                          stage_name, cause.splitlines()[0])
                return EXIT_PERMANENT
            if isinstance(exc, ProgrammingError):  # a bad statement, not a missing table: a bug, not an outage
                raise
            log.error("[%s] %s: state DB unreachable: %s", video_id, stage_name, cause)
            return EXIT_TRANSIENT


def _run_stage(stage_name: str, video_id: str, settings: Settings, owner: str | None, force: bool,
               run_id: str | None, map_index: int | None) -> int:
    check_video_id(video_id)
    stage_module(stage_name)  # an unknown stage is refused before anything is claimed
    owner = owner or default_owner()
    prefix = f"[{video_id}] {stage_name}:"
    try:
        with session_scope(settings.db_url) as session:
            if force:
                reset_for_rerun(session, stage_name, video_ids=[video_id])
            row = claim_one(session, video_id, stage_name, owner, settings.lease_seconds, settings.max_attempts,
                            run_id=run_id, map_index=map_index)
            attempt, token = row.attempts, row.lease_token
            video = video_record(session, video_id)
    except NotClaimable as exc:
        log.warning("%s not run: %s", prefix, exc)
        return EXIT_NOT_CLAIMABLE
    log.info("%s started (attempt %d, owner %s)", prefix, attempt, owner)
    with Claim(settings, video_id, stage_name, token, prefix) as claim:
        return _run_claimed(stage_name, video, FencedStore(store_from_settings(settings), claim.check), settings, owner,
                            token, prefix)


def _run_claimed(stage_name: str, video, store, settings: Settings, owner: str, token: str, prefix: str) -> int:
    """Run the stage under its claim and record the outcome, if the claim still holds."""
    video_id = video.id
    started = time.monotonic()
    _remove_leftovers(store, video_id, prefix)
    try:
        result = stage_module(stage_name).run(video, store, settings)
        undeclared = set(result.artifacts) - set(stage_spec(stage_name).produces)
        if undeclared:  # what later stages find is what specs say: a stage may not record more
            raise ValueError(f"{stage_name} recorded artifacts its spec does not declare: "
                             f"{', '.join(sorted(undeclared))}")
    except Exception as exc:  # every failure ends in a recorded state, never a silent drop
        error_class, transient = classify(exc)
        # the message may come from a hostile server or file name: control characters and escapes go
        message = printable(str(exc)) or error_class
        log.error("%s failed: %s: %s", prefix, error_class, message)
        log.debug("%s", traceback.format_exc())
        def record_failure(text: str = message) -> bool:
            with session_scope(settings.db_url) as session:
                return mark_failed(session, video_id, stage_name, owner, error_class, text, transient,
                                   settings.max_attempts, settings.retry_backoff_seconds, token=token)

        def record_failure_safely() -> bool:
            """A message the DB still refuses is recorded as ASCII escapes: the failure is never left unrecorded."""
            from sqlalchemy.exc import DBAPIError

            try:
                return record_failure()
            except DBAPIError as exc:
                if isinstance(exc, _db_away()):
                    raise
                return record_failure(message.encode("ascii", "backslashreplace").decode())

        try:
            retry = _record(prefix, record_failure_safely)
        except LeaseLost as lost:
            log.error("%s result not recorded: %s", prefix, lost)
            return EXIT_TRANSIENT
        log.info("%s %s", prefix, "will be retried" if retry else "failed permanently")
        return EXIT_TRANSIENT if retry else EXIT_PERMANENT
    seconds = time.monotonic() - started
    metrics = {**result.metrics, "stage_seconds": round(seconds, 3)}
    version, config = stage_version(stage_name, settings), stage_config(stage_name, settings)
    def record_result() -> None:
        with session_scope(settings.db_url) as session:
            if result.video_updates:
                update_video(session, video_id, **result.video_updates)
            if result.status == "succeeded":
                mark_succeeded(session, video_id, stage_name, owner, result.artifacts, metrics, version, token=token,
                               config=config)
            else:
                mark_rejected(session, video_id, stage_name, owner, result.reason or "rejected", metrics,
                              result.artifacts, version, token=token, config=config)

    try:
        _record(prefix, record_result)
    except LeaseLost as lost:
        log.error("%s result not recorded: %s", prefix, lost)
        return EXIT_TRANSIENT
    if result.status == "succeeded":
        log.info("%s succeeded in %.1fs: %s", prefix, seconds, _short(result.metrics))
    else:
        log.info("%s rejected: %s", prefix, result.reason)
    return EXIT_OK


def _remove_leftovers(store, video_id: str, prefix: str) -> None:
    """Remove what a killed earlier run of the video left half-written: temporary store files, unfinished multipart
    uploads, scratch folders. Best effort: a store that is away fails the stage at its first real read or write,
    with that error, and the bucket's lifecycle rule aborts any upload left (docs/reliability.md)."""
    try:
        left = store.remove_partial(Keys.video(video_id, ""), STALE_AFTER_S) + remove_scratch(video_id, STALE_AFTER_S)
    except Exception as exc:  # noqa: BLE001 - any store error: the stage's own work decides the outcome
        log.warning("%s partial files of earlier runs not checked: %s: %s", prefix, type(exc).__name__, exc)
        return
    if left:
        log.info("%s removed %d partial file(s) a killed earlier run left", prefix, left)


def run_stage_batch(stage_name: str, video_ids: list[str], settings: Settings, owner: str | None = None,
                    force: bool = False, run_id: str | None = None, map_index: int | None = None) -> int:
    """Run one stage for several videos in this process, so models load once; each video keeps its own state
    row and its own delimited log section. The exit code is the worst outcome (transient > permanent > ok)."""
    owner = owner or default_owner()
    codes = []
    for n, video_id in enumerate(video_ids, start=1):
        with stage_context(video_id=video_id, stage=stage_name, run_id=run_id):
            log.info("===== [%s] %s (%d of %d) =====", video_id, stage_name, n, len(video_ids))
            code = run_stage(stage_name, video_id, settings, owner=owner, force=force, run_id=run_id,
                             map_index=map_index)
            log.info("===== [%s] %s: end (exit %d) =====", video_id, stage_name, code)
        codes.append(code)
    for worst in (EXIT_TRANSIENT, EXIT_PERMANENT):
        if worst in codes:
            return worst
    if codes and all(code == EXIT_NOT_CLAIMABLE for code in codes):
        return EXIT_NOT_CLAIMABLE
    return EXIT_OK


def _short(metrics: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in metrics.items()
                     if isinstance(v, (int, float, str)) and k != "stage_seconds")
