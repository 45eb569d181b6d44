"""Airflow overhead: the same N videos through every per-video phase, once by calling the stage CLI directly (each
phase's tasks run as Airflow would map them, with the same concurrency) and once through real DAG runs (a real
Airflow 3: api-server, scheduler, dag-processor, triggerer, LocalExecutor; the download run triggered through the
REST API, every later phase scheduled by the previous phase's Asset). Overhead = Airflow wall / direct wall - 1.

    .venv/bin/python bench/overhead.py [--videos 50 200] [--seconds 12]

Videos are short narrated lectures (--seconds long, one file served on loopback under N ids, each downloaded on
its own); the state DB and Airflow's metadata DB are fresh databases on the Postgres at LECTERN_BENCH_PG_URL
(default postgresql+psycopg2://postgres@127.0.0.1:5432/postgres). Concurrency: the download pool's slots, the GPU
pool's (1), and for CPU phases one task per core (AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG, and as many CLI
processes at once directly).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import CACHE, bench_environment, machine, narrated_lecture, run_stage_process, seed, tiny_models

from lectern.config import GPU_STAGES, STAGES, Settings
from lectern.demo.local_airflow import LocalAirflow
from lectern.demo.server import CorpusServer
from lectern.phases import pool_definitions, task_groups
from lectern.state.db import session_scope
from lectern.state.ops import stage_rows

ADMIN_URL = os.environ.get("LECTERN_BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
TERMINAL = ("succeeded", "rejected", "failed")


def database(action: str, name: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"' if action == "create"
                                else f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def concurrency(stage: str, settings: Settings) -> int:
    if stage in GPU_STAGES:
        return settings.gpu_pool_slots
    if stage == "download":
        return min(settings.download_pool_slots, CPU_TASKS)
    return CPU_TASKS


CPU_TASKS = os.cpu_count() or 1


def ready(settings: Settings, stage: str, video_ids: list[str]) -> list[str]:
    with session_scope(settings.db_url) as session:
        return sorted(r.video_id for r in stage_rows(session, video_ids=video_ids, stage=stage) if r.status == "pending")


def statuses(settings: Settings, stage: str, video_ids: list[str]) -> dict[str, int]:
    with session_scope(settings.db_url) as session:
        counts: dict[str, int] = {}
        for row in stage_rows(session, video_ids=video_ids, stage=stage):
            counts[row.status] = counts.get(row.status, 0) + 1
        return counts


def direct(env: dict[str, str], video_ids: list[str]) -> float:
    """Every phase in turn, its groups as `lectern stage` processes, as many at once as Airflow would run."""
    settings = Settings.from_env(env)
    started = time.monotonic()
    for stage in STAGES:
        groups = task_groups(settings, stage, ready(settings, stage, video_ids))
        with ThreadPoolExecutor(max_workers=concurrency(stage, settings)) as pool:
            list(pool.map(lambda group: run_stage_process(stage, group, env), groups))
    return time.monotonic() - started


def through_airflow(env: dict[str, str], home: Path, video_ids: list[str], metadata_url: str) -> tuple[float, int]:
    """Trigger the download DAG through the REST API; the Assets schedule every later phase. Returns the wall
    time until every video ended the last phase and no DAG run is left, and the number of task instances run."""
    settings = Settings.from_env(env)
    airflow = LocalAirflow(home, {**env, "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(CPU_TASKS),
                                  "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}, metadata_db_url=metadata_url)
    airflow.start(pool_definitions(settings))
    try:
        dag_ids = [f"lectern_{stage}" for stage in STAGES]
        airflow.wait_until(lambda: all(airflow.get(f"/api/v2/dags/{d}") for d in dag_ids), 300,
                           "the DAGs to be parsed")
        request = urllib.request.Request(
            f"{airflow.url}/api/v2/dags/lectern_download/dagRuns", method="POST",
            headers={"Content-Type": "application/json"},
            data=json.dumps({"logical_date": None, "conf": {"batch_size": len(video_ids)}}).encode())
        started = time.monotonic()
        urllib.request.urlopen(request, timeout=60).read()

        idle_since = [time.monotonic()]

        def finished() -> bool:
            busy = any(airflow.get(f"/api/v2/dags/{d}/dagRuns?state=running&state=queued")["total_entries"]
                       for d in dag_ids)
            if busy:
                idle_since[0] = time.monotonic()
            elif time.monotonic() - idle_since[0] > 120 and not all_ended_early(settings, video_ids):
                raise RuntimeError(f"no DAG run for 2 minutes and videos left: {statuses(settings, 'download', video_ids)}")
            done = sum(statuses(settings, STAGES[-1], video_ids).get(s, 0) for s in TERMINAL) == len(video_ids)
            return not busy and (done or all_ended_early(settings, video_ids))

        airflow.wait_until(finished, 6 * 3600, "every video through every phase", interval=1.0)
        wall = time.monotonic() - started
        tasks = sum(airflow.get(f"/api/v2/dags/{d}/dagRuns/~/taskInstances?limit=1")["total_entries"]
                    for d in dag_ids)
        return wall, tasks
    finally:
        airflow.stop()


def all_ended_early(settings: Settings, video_ids: list[str]) -> bool:
    """Every video ended in some phase (a rejection or failure stops it before the last)."""
    with session_scope(settings.db_url) as session:
        rows = stage_rows(session, video_ids=video_ids)
    pending = {r.video_id for r in rows if r.status not in TERMINAL}
    return not pending


def overhead(n: int, seconds: float) -> dict:
    path, duration = narrated_lecture(seconds / 60)
    models = tiny_models()
    video_ids = [f"v{i:04d}" for i in range(n)]
    result = {"videos": n, "video_s": duration}
    with CorpusServer(CACHE) as server:
        for mode in ("direct", "airflow"):
            home = Path(tempfile.mkdtemp(prefix=f"lectern-bench-{mode}-"))
            names = [f"lectern_bench_{uuid.uuid4().hex[:8]}" for _ in range(2)]
            state_url, metadata_url = (database("create", name) for name in names)
            try:
                # seeded, not searched: no metadata scores for downloads to wait for
                env = bench_environment(home, models, LECTERN_DB_URL=state_url, LECTERN_BATCH_SIZE=str(n),
                                        LECTERN_STORE_URL=f"file://{home / 'store'}",
                                        LECTERN_METADATA_MIN_RELEVANCE="0", LECTERN_METADATA_JUDGE_MODEL="")
                seed(state_url, [(v, f"{server.base_url}/{path.name}?copy={v}") for v in video_ids])
                if mode == "direct":
                    result["direct_s"] = direct(env, video_ids)
                else:
                    result["airflow_s"], result["task_instances"] = through_airflow(env, home, video_ids,
                                                                                    metadata_url)
                result[f"{mode}_outcome"] = statuses(Settings.from_env(env), STAGES[-1], video_ids)
                print(f"{n} videos, {mode}: {result}", flush=True)
            finally:
                from lectern.state.db import engine_for

                engine_for.cache_clear()
                for name in names:
                    database("drop", name)
                shutil.rmtree(home, ignore_errors=True)
    result["overhead"] = result["airflow_s"] / result["direct_s"] - 1
    return result


def table(results: list[dict]) -> list[str]:
    lines = ["| videos | video s each | direct CLI s | Airflow DAG runs s | task instances | overhead |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        lines.append(f"| {r['videos']} | {r['video_s']:.0f} | {r['direct_s']:.0f} | {r['airflow_s']:.0f} | "
                     f"{r['task_instances']} | {r['overhead']:+.1%} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--seconds", type=float, default=12.0, help="length of each video")
    args = parser.parse_args()
    results = []
    for n in args.videos:
        results.append(overhead(n, args.seconds))
        print(json.dumps(results[-1]), flush=True)
    print(f"\nAirflow overhead on {machine()}\n")
    print("\n".join(table(results)))


if __name__ == "__main__":
    main()
