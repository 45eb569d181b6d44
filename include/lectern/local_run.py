"""Every phase DAG for one subject through a local Airflow (``airflow dags test``: a real DAG run each, claim, one
mapped task per video, publish), on the embedded defaults, and the summary a person reads afterwards.
``python -m lectern demo`` drives its generated subject this way."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from lectern.config import Settings
from lectern.local_airflow import AIRFLOW, REPO, prepare_metadata
from lectern.pipeline import PHASES


def airflow_environment(home: Path, dags_folder: Path = REPO / "dags") -> dict[str, str]:
    """The environment of a local Airflow whose home is under Lectern's `home`."""
    return {
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }


def prepare_airflow(settings: Settings, env: dict[str, str]) -> None:
    """Both state DBs migrated (Lectern's and Airflow's), Lectern's pools created (a scheduler runs no task of a
    pool that does not exist; `dags test` ignores pools, a later `lectern ui` does not)."""
    from lectern.phases import pool_definitions
    from lectern.state.db import migrate

    migrate(settings.db_url)
    prepare_metadata(settings.home, env, pool_definitions(settings))


def run_phase_dag(phase: str, conf: dict, env: dict[str, str], log_dir: Path) -> int:
    """One real DAG run of a phase; its output goes to `log_dir`/lectern_<phase>.log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"lectern_{phase}.log", "w") as handle:
        proc = subprocess.run([AIRFLOW, "dags", "test", f"lectern_{phase}", "-c", json.dumps(conf)],
                              stdout=handle, stderr=subprocess.STDOUT, env=env)
    return proc.returncode


def run_phases(subject: str, release: str, env: dict[str, str], log_dir: Path) -> bool:
    """Every phase DAG in order for `subject` (assemble writes `release`), a line each; False at the first that
    fails."""
    for phase in PHASES:
        conf = {"subject": subject, **({"release": release} if phase == "assemble" else {})}
        started = time.monotonic()
        code = run_phase_dag(phase, conf, env, log_dir)
        print(f"   lectern_{phase:<11} {time.monotonic() - started:6.1f}s  {'ok' if code == 0 else f'exit {code}'}"
              f"  (log: {log_dir / f'lectern_{phase}.log'})", flush=True)
        if code != 0:
            print(f"the {phase} DAG run failed; see its log", file=sys.stderr)
            return False
    return True


def summary(settings: Settings, subject: str) -> str:
    """The subject's funnel, then each video at the furthest stage it reached and why it stopped there."""
    from lectern.state.db import session_scope
    from lectern.state.ops import funnel, furthest_rows, why
    from lectern.stats import format_funnel

    with session_scope(settings.db_url) as session:
        lines = [format_funnel(funnel(session, subject)), ""]
        for video_id, row in sorted(furthest_rows(session).items()):
            reason = why(row)
            lines.append(f"  {video_id:<18} {row.stage:<10} {row.status}" + (f" ({reason})" if reason else ""))
    return "\n".join(lines)
