"""What every Lectern DAG shares at parse time: the settings (environment only, no I/O), start date, tags, retry
defaults, one Asset per phase and the phase DAGs' schedules."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset

from lectern.config import Settings
from lectern.recipes import PHASES, upstream_phases

SETTINGS = Settings.from_env()  # environment only: no I/O at parse time
START = datetime(2025, 1, 1)
TAGS = ["lectern"]
# A task's retries wait as a video's do (LECTERN_RETRY_BACKOFF_SECONDS, doubling): a retry of the same run then
# claims its videos at once.
DEFAULT_ARGS = {"retries": 2, "retry_delay": timedelta(seconds=SETTINGS.retry_backoff_seconds),
                "retry_exponential_backoff": True, "max_retry_delay": timedelta(minutes=30)}

# One Asset per phase: a phase's publish task updates it; the next phase is scheduled on it.
ASSETS = {phase: Asset(name=f"lectern_{phase}", uri=f"lectern://phases/{phase}") for phase in PHASES}


def upstream_assets(phase: str):
    """Any of the upstream phases' Assets (`a | b`: a list would wait for all of them)."""
    condition = None
    for upstream in upstream_phases(phase):
        condition = ASSETS[upstream] if condition is None else condition | ASSETS[upstream]
    return condition


def phase_schedule(phase: str):
    """On an upstream phase's Asset, and on LECTERN_BACKLOG_CRON (every 6 hours by default) to drain any backlog."""
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

    assets = upstream_assets(phase)
    if not SETTINGS.backlog_cron:
        return assets
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(SETTINGS.backlog_cron, timezone="UTC"), assets=assets)


def dag_args(phase: str) -> dict:
    """What every phase DAG sets the same way."""
    return {
        "dag_id": f"lectern_{phase}",
        "start_date": START,
        "catchup": False,
        "max_active_runs": 1,
        "tags": TAGS + [phase],
        "default_args": DEFAULT_ARGS,
    }
