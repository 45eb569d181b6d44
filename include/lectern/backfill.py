"""What the ``lectern_backfill_subject`` DAG decides: the phase runs of one round, whether the subject's backlog
is drained, and, when a round moved nothing, what is stuck and why.

A round triggers every phase DAG once, in order, for the subject. Each phase claims only videos ready for it,
so finished work is never redone. Rounds repeat (the DAG triggers itself) while videos remain ready or in flight
and the last round finished something; a round that finished nothing ends the backfill with a report.
"""

from __future__ import annotations

import logging

from lectern.config import Settings
from lectern.recipes import STAGES
from lectern.stages.download.prefilter import awaited_scores
from lectern.state.db import session_scope
from lectern.state.reports import Backlog, backlog

log = logging.getLogger("lectern")


def round_confs(subject: str, batch_size: int) -> dict[str, dict]:
    """The trigger conf of each phase DAG in one backfill round (every param stated, nothing forced)."""
    confs = {"discover": {"subject": subject, "force": False}}
    for stage in STAGES:
        confs[stage] = {"subject": subject, "video_ids": [], "batch_size": batch_size, "force": False,
                        "stale_only": False}
    return confs


def subject_backlog(settings: Settings, subject: str) -> Backlog:
    with session_scope(settings.db_url) as session:
        return backlog(session, settings.max_attempts, subject=subject, await_scores=awaited_scores(settings))


def _listing(by_stage: dict[str, list[str]]) -> str:
    return "; ".join(f"{stage}: {', '.join(sorted(ids))}" for stage, ids in by_stage.items())


def review_round(settings: Settings, subject: str, finished_before: int, round_number: int,
                 max_rounds: int) -> dict:
    """After a round: `next` is "done" (drained), "again" (more to do, and this round moved something) or
    "stuck" (nothing moved, or the round limit is reached), with the videos behind it."""
    state = subject_backlog(settings, subject)
    progressed = state.finished > finished_before
    if state.drained:
        decision = "done"
    elif progressed and round_number < max_rounds:
        decision = "again"
    else:
        decision = "stuck"
    report = {
        "subject": subject, "round": round_number, "next": decision,
        "finished": state.finished, "finished_this_round": state.finished - finished_before,
        "ready": state.ready, "waiting": state.waiting,
        "failed": [{"video_id": v, "stage": s, "error_class": c, "error_message": m} for v, s, c, m in state.failed],
    }
    log.info("backfill %s, round %d: %d rows finished (%+d this round)", subject, round_number, state.finished,
             report["finished_this_round"])
    for video_id, stage, error_class, message in state.failed:
        log.info("  failed for good: %s at %s (%s: %s)", video_id, stage, error_class, message)
    if decision == "done":
        log.info("backfill %s: backlog drained", subject)
    elif decision == "again":
        log.info("backfill %s: another round follows. Ready: %s. In flight: %s", subject,
                 _listing(state.ready) or "none", _listing(state.waiting) or "none")
    else:
        why = "the round limit is reached" if progressed else "the last round finished nothing"
        log.warning("backfill %s is stuck (%s). Ready but not taken: %s. In flight or waiting out a retry "
                    "backoff: %s", subject, why, _listing(state.ready) or "none", _listing(state.waiting) or "none")
    return report
