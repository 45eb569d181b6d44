"""Live progress of a `lectern run` on stderr (rich), read from the state DB while a phase's DAG run works: per
phase, the videos done, rejected and failed out of those claimed, with the elapsed time and an ETA; per video, a
line each time its state changes. On a terminal the bar redraws in place; piped, only the lines are written."""

from __future__ import annotations

import functools
from datetime import datetime

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from lectern.config import Settings
from lectern.recipes import STAGES
from lectern.state.models import FAILED, FORGOTTEN, PENDING, REJECTED, SUCCEEDED

FINISHED = (SUCCEEDED, REJECTED, FAILED, FORGOTTEN)


@functools.lru_cache(maxsize=1)
def console() -> Console:
    """Where progress goes: stderr, so stdout carries only the summary and can be piped."""
    return Console(stderr=True, highlight=False, soft_wrap=True)  # piped: a line per video, never cut


class PhaseWatch:
    """One phase's progress bar and per-video lines. The videos it counts are the subject's rows of the phase's
    stage claimed since the phase started (discover: the videos it found)."""

    def __init__(self, settings: Settings, subject: str, phase: str):
        self.settings, self.subject, self.phase = settings, subject, phase
        self.stage = phase if phase in STAGES else None
        self.progress = Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[counts]}"), TimeElapsedColumn(), TextColumn("ETA"),
                                 TimeRemainingColumn(), console=console(), transient=False)
        self.states: dict[str, str] = {}
        self.since: datetime | None = None
        self.task = None

    def __enter__(self) -> "PhaseWatch":
        from lectern.state.models import utcnow

        self.since = utcnow()
        self.progress.start()
        self.task = self.progress.add_task(f"lectern_{self.phase}", total=None, counts="")
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def rows(self) -> list[tuple[str, str, str | None]]:
        """(video id, status, why) of the rows this phase claimed (or, for discover, created) so far."""
        from lectern.state.db import session_scope
        from lectern.state.reports import rows_since, why

        with session_scope(self.settings.db_url) as session:
            if self.stage is None:
                return [(r.video_id, "found", None)
                        for r in rows_since(session, self.subject, STAGES[0], self.since) if r.started_at is None]
            return [(r.video_id, r.status, why(r)) for r in rows_since(session, self.subject, self.stage, self.since)
                    if r.started_at is not None and r.status != PENDING]

    def update(self) -> None:
        from sqlalchemy.exc import OperationalError

        try:
            rows = self.rows()
        except OperationalError:  # SQLite busy with a stage's write: the next tick reads it
            return
        for video_id, status, reason in rows:
            if self.states.get(video_id) != status:
                self.states[video_id] = status
                colour = {SUCCEEDED: "green", REJECTED: "yellow", FAILED: "red"}.get(status, "cyan")
                self.progress.console.print(f"  {video_id:<24} {self.phase:<10} [{colour}]{status}[/{colour}]"
                                            + (f" ({reason})" if reason else ""), markup=True, highlight=False)
        if self.stage is None:
            self.progress.update(self.task, total=None, completed=len(rows), counts=f"{len(rows)} videos found")
            return
        counts = {s: sum(1 for _, status, _ in rows if status == s) for s in FINISHED}
        done = sum(counts.values())
        self.progress.update(self.task, total=len(rows) or None, completed=done,
                             counts=f"{counts[SUCCEEDED]} ok, {counts[REJECTED]} rejected, {counts[FAILED]} failed")

    def finish(self, code: int) -> None:
        total = len(self.states)
        self.progress.update(self.task, total=total or 1, completed=total or 1,
                             **({} if total else {"counts": "nothing to do"}))
        if code != 0:
            self.progress.update(self.task, description=f"lectern_{self.phase} (exit {code})")
