"""Airflow overhead: the same N videos through every per-video phase, once by calling the stage CLI directly (each
phase's tasks run as Airflow would map them, with the same concurrency) and once through real DAG runs (a real
Airflow 3: api-server, scheduler, dag-processor, triggerer, LocalExecutor; the download run triggered through the
REST API, every later phase scheduled by the previous phase's Asset). Overhead = Airflow wall / direct wall - 1.

    .venv/bin/python bench/overhead.py [--videos 50 200 --cpu-videos-per-task 1 25] [--seconds 12]

Videos are short narrated lectures (--seconds long, one file served on loopback under N ids, each downloaded on
its own); the state DB and Airflow's metadata DB are fresh databases on the Postgres at LECTERN_BENCH_PG_URL
(default postgresql+psycopg2://postgres@127.0.0.1:5432/postgres). Concurrency: the download pool's slots, the GPU
pool's (one per core here, where the GPU phases run on the cores), and for CPU phases one task per core
(AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG, and as many CLI processes at once directly). Each N runs once per
--cpu-videos-per-task value (LECTERN_CPU_VIDEOS_PER_TASK: 1 is one mapped task per video, more amortises Airflow's
per-task cost); GPU phases run --gpu-videos-per-task videos per task; both modes run the same task groups.
Besides the wall times it prints, per phase and mode, the span and the videos' own stage seconds (from the state
rows), and the wall time beyond the stage work, which the VM's run-to-run speed of the work itself moves less;
and where the CPU went in each mode (CpuMeter): Airflow's own CPU is the CPU outside the stage processes through
Airflow less that of the direct run, as a share of the stage processes' CPU, and Airflow's own processes' CPU by
part (scheduler, api-server, dag-processor, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from common import CACHE, bench_environment, machine, narrated_lecture, run_stage_process, seed, tiny_models

from lectern.config import Settings
from lectern.local_airflow import LocalAirflow, group_processes, processes
from lectern.phase_tasks import pool_definitions, task_groups
from lectern.pipeline import GPU_STAGES
from lectern.recipes import RECIPES, STAGES
from lectern.state.db import migrate, session_scope
from lectern.state.reports import stage_rows
from lectern_dev.server import CorpusServer

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


CPU_TASKS = os.cpu_count() or 1
GPU_VIDEOS_PER_TASK = 25  # one model load serves a GPU task's videos; at 4 (the default) loading would dominate
# What `make bench` measures: (videos, videos per CPU-phase task): a task per video, then grouped.
RUNS = ((50, 1), (50, 25), (200, 25))


def concurrency(stage: str, settings: Settings) -> int:
    if stage in GPU_STAGES:
        return settings.gpu_pool_slots
    if stage == "download":
        return min(settings.download_pool_slots, CPU_TASKS)
    return CPU_TASKS


def ready(settings: Settings, stage: str, video_ids: list[str]) -> list[str]:
    with session_scope(settings.db_url) as session:
        rows = stage_rows(session, video_ids=video_ids, stage=stage)
        return sorted(r.video_id for r in rows if r.status == "pending")


def statuses(settings: Settings, stage: str | None, video_ids: list[str]) -> dict[str, int]:
    """Rows by status, of one stage (or of every stage: "stage status" keys)."""
    with session_scope(settings.db_url) as session:
        counts: dict[str, int] = {}
        for row in stage_rows(session, video_ids=video_ids, stage=stage):
            key = row.status if stage else f"{row.stage} {row.status}"
            counts[key] = counts.get(key, 0) + 1
        return counts


TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds every core of the machine has been busy since boot (/proc/stat: all but idle and iowait)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) * TICK_S


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def stage_processes() -> dict[tuple[int, int], float]:
    """CPU seconds of every live `lectern stage` process, keyed by (pid, start time): its own and its waited-for
    children's (tesseract, ffmpeg)."""
    return {(pid, int(stat[19])): sum(map(int, stat[11:15])) * TICK_S for pid, stat, argv in processes()
            if argv[1:4] == [b"-m", b"lectern", b"stage"]}


# Airflow's processes by what their process title says; a task's stage process and its children are not Airflow's
AIRFLOW_PARTS = (("api-server", ("api_server", "api-server")), ("scheduler", ("scheduler",)),
                 ("dag-processor", ("dag-processor",)), ("triggerer", ("triggerer",)), ("serve-logs", ("serve-logs",)),
                 ("executor workers and tasks", ("airflow worker",)))


def airflow_processes(group: int) -> dict[tuple[int, int], tuple[str, float]]:
    """The Airflow processes of a process group, keyed by (pid, start time): their part and own CPU seconds. Only
    the dag-processor's count its waited-for children (its parsing processes, too short-lived to sample; one
    caught alive by a sample counts twice, by itself and once reaped); the executor workers' children are the
    tasks, which run the stage processes."""
    found = {}
    for pid, fields, title in group_processes(group):
        part = next((name for name, marks in AIRFLOW_PARTS if any(mark in title for mark in marks)), None)
        if part and "lectern stage" not in title:
            ticks = fields[11:15] if part == "dag-processor" else fields[11:13]
            found[(pid, int(fields[19]))] = (part, sum(map(int, ticks)) * TICK_S)
    return found


class CpuMeter:
    """Where the machine's CPU went during a run: the stage processes' own (sampled every `interval` s, so the
    last moments of each are missed) and everything else, less this benchmark process. In both modes "else" holds
    the database server and the machine's idle services; through Airflow it holds Airflow too (its components, the
    executor's workers, each task's supervisor and task process), which is the overhead the wall time blurs when
    the work itself runs at another speed. Given Airflow's process group, it also samples Airflow's own processes
    by part, every `group_interval` s (what a part's processes used before the run started is left out)."""

    def __init__(self, interval: float = 0.2, airflow_group: int | None = None, group_interval: float = 1.0):
        self.interval, self.stages, self.done = interval, {}, threading.Event()
        self.group, self.group_every = airflow_group, max(1, round(group_interval / interval))
        self.airflow, self.airflow_before = {}, {}
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        samples = 0
        while True:
            self.stages.update(stage_processes())
            if self.group and samples % self.group_every == 0:
                self.airflow.update(airflow_processes(self.group))
            samples += 1
            if self.done.wait(self.interval):
                return

    def __enter__(self) -> "CpuMeter":
        self.busy, self.own = machine_busy_s(), own_cpu_s()
        if self.group:
            self.airflow_before = airflow_processes(self.group)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()
        busy, own, stage = machine_busy_s() - self.busy, own_cpu_s() - self.own, sum(self.stages.values())
        self.result = {"busy_cpu_s": round(busy, 1), "stage_cpu_s": round(stage, 1),
                       "outside_cpu_s": round(busy - own - stage, 1)}
        if self.group:
            self.airflow.update(airflow_processes(self.group))
            parts = {name: 0.0 for name, _ in AIRFLOW_PARTS}
            for key, (part, cpu) in self.airflow.items():
                parts[part] += cpu - self.airflow_before.get(key, (part, 0.0))[1]
            self.result["airflow_parts_cpu_s"] = {name: round(cpu, 1) for name, cpu in parts.items()}


def direct(env: dict[str, str], video_ids: list[str]) -> tuple[float, dict]:
    """Every phase in turn, its groups as `lectern stage` processes, as many at once as Airflow would run. Returns
    the wall time and the CpuMeter's figures."""
    settings = Settings.from_env(env)
    started = time.monotonic()
    with CpuMeter() as cpu:
        for stage in STAGES:
            groups = task_groups(settings, stage, ready(settings, stage, video_ids))
            with ThreadPoolExecutor(max_workers=concurrency(stage, settings)) as pool:
                list(pool.map(lambda group: run_stage_process(stage, group, env), groups))
    return time.monotonic() - started, cpu.result


def through_airflow(env: dict[str, str], home: Path, video_ids: list[str], metadata_url: str,
                    seed_videos) -> tuple[float, int, dict]:
    """Start Airflow on an empty state DB and let the runs it schedules at start (the phases' cron) end, claiming
    nothing; then seed the videos and trigger the download DAG through the REST API; the Assets schedule every
    later phase. Returns the wall time from the trigger until every video ended the last phase and no DAG run is
    left, the number of task instances run, and the CpuMeter's figures over that time."""
    settings = Settings.from_env(env)
    airflow = LocalAirflow(home, {**env, "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(CPU_TASKS),
                                  "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}, metadata_db_url=metadata_url)
    airflow.start(pool_definitions(settings))
    try:
        dag_ids = [f"lectern_{stage}" for stage in STAGES]
        airflow.wait_until(lambda: all(airflow.get(f"/api/v2/dags/{d}") for d in dag_ids), 300,
                           "the DAGs to be parsed")

        def runs_left() -> int:
            return sum(airflow.get(f"/api/v2/dags/{d}/dagRuns?state=running&state=queued")["total_entries"]
                       for d in dag_ids)

        quiet = [0]

        def settled() -> bool:  # no run for 3 polls in a row: the start's scheduled runs and what they triggered
            quiet[0] = 0 if runs_left() else quiet[0] + 1
            return quiet[0] >= 3

        airflow.wait_until(settled, 600, "the runs scheduled at start to end")
        seed_videos()
        tasks_before = task_instances(airflow, dag_ids)
        request = urllib.request.Request(
            f"{airflow.url}/api/v2/dags/lectern_download/dagRuns", method="POST",
            headers={"Content-Type": "application/json"},
            data=json.dumps({"logical_date": None, "conf": {"batch_size": len(video_ids)}}).encode())
        started = time.monotonic()
        with CpuMeter(airflow_group=airflow.process.pid) as cpu:
            urllib.request.urlopen(request, timeout=60).read()
            progress = [time.monotonic(), None]

            def finished() -> bool:
                # the state DB first (cheap); Airflow's API only once every video ended, so polling loads it little
                counts = statuses(settings, None, video_ids)
                if counts != progress[1]:
                    progress[:] = [time.monotonic(), counts]
                elif time.monotonic() - progress[0] > 300:
                    raise RuntimeError(f"no video changed state for 5 minutes: {counts}")
                return every_video_ended(settings, video_ids) and not runs_left()

            airflow.wait_until(finished, 6 * 3600, "every video through every phase", interval=2.0)
        wall = time.monotonic() - started
        return wall, task_instances(airflow, dag_ids) - tasks_before, cpu.result
    finally:
        airflow.stop()


def task_instances(airflow: LocalAirflow, dag_ids: list[str]) -> int:
    return sum(airflow.get(f"/api/v2/dags/{d}/dagRuns/~/taskInstances?limit=1")["total_entries"] for d in dag_ids)


def every_video_ended(settings: Settings, video_ids: list[str]) -> bool:
    """Every video's rows are finished: it went through the last phase, or a rejection or failure stopped it."""
    with session_scope(settings.db_url) as session:
        return all(row.status in TERMINAL for row in stage_rows(session, video_ids=video_ids))


def phase_timings(settings: Settings, video_ids: list[str]) -> dict[str, dict[str, float]]:
    """Per textbook phase, from the videos' state rows (the same in both modes): its span, from the first video
    claimed (by the stage process directly, by the phase's claim task in Airflow) to the last one finished, and
    its compute, the sum of each video's own stage seconds (the runner's stage_seconds metric: the stage's work
    alone, without process start or model loading)."""
    with session_scope(settings.db_url) as session:
        rows = [r for r in stage_rows(session, video_ids=video_ids) if r.started_at and r.finished_at]
    timings = {}
    for stage in RECIPES["textbook"].stages:
        mine = [r for r in rows if r.stage == stage]
        if mine:
            span = max(r.finished_at for r in mine) - min(r.started_at for r in mine)
            timings[stage] = {"span_s": round(span.total_seconds(), 1),
                              "compute_s": round(sum((r.metrics or {}).get("stage_seconds", 0.0) for r in mine), 1)}
    return timings


def overhead(n: int, seconds: float, cpu_videos_per_task: int = 1, gpu_videos_per_task: int = GPU_VIDEOS_PER_TASK
             ) -> dict:
    path, duration = narrated_lecture(seconds / 60)
    models = tiny_models()
    video_ids = [f"v{i:04d}" for i in range(n)]
    result = {"videos": n, "video_s": duration, "cpu_videos_per_task": cpu_videos_per_task,
              "gpu_videos_per_task": gpu_videos_per_task}
    with CorpusServer(CACHE) as server:
        for mode in ("direct", "airflow"):
            home = Path(tempfile.mkdtemp(prefix=f"lectern-bench-{mode}-"))
            names = [f"lectern_bench_{uuid.uuid4().hex[:8]}" for _ in range(2)]
            state_url, metadata_url = (database("create", name) for name in names)
            try:
                # seeded, not searched: no metadata scores for downloads to wait for
                env = bench_environment(home, models, LECTERN_DB_URL=state_url, LECTERN_BATCH_SIZE=str(n),
                                        LECTERN_STORE_URL=f"file://{home / 'store'}",
                                        LECTERN_METADATA_MIN_RELEVANCE="0", LECTERN_METADATA_JUDGE_MODEL="",
                                        LECTERN_CPU_VIDEOS_PER_TASK=str(cpu_videos_per_task),
                                        # the Assets alone schedule the phases: a cron tick would overlap them
                                        LECTERN_BACKLOG_CRON="",
                                        LECTERN_VIDEOS_PER_TASK=str(gpu_videos_per_task),
                                        # no GPU here: the GPU phases run on the cores, a slot each
                                        LECTERN_GPU_POOL_SLOTS=str(CPU_TASKS))
                migrate(state_url)  # an empty, ready state DB: the runs Airflow schedules at start claim nothing
                seed_videos = partial(seed, state_url, [(v, f"{server.base_url}/{path.name}?copy={v}")
                                                        for v in video_ids])
                if mode == "direct":
                    seed_videos()
                    result["direct_s"], result["direct_cpu"] = direct(env, video_ids)
                else:
                    (result["airflow_s"], result["task_instances"],
                     result["airflow_cpu"]) = through_airflow(env, home, video_ids, metadata_url, seed_videos)
                settings = Settings.from_env(env)
                result[f"{mode}_outcome"] = statuses(settings, RECIPES["textbook"].stages[-1], video_ids)
                result[f"{mode}_phases"] = phase_timings(settings, video_ids)
                print(f"{n} videos, {mode}: {result}", flush=True)
            finally:
                from lectern.state.db import engine_for

                engine_for.cache_clear()
                for name in names:
                    database("drop", name)
                shutil.rmtree(home, ignore_errors=True)
    result["overhead"] = result["airflow_s"] / result["direct_s"] - 1
    return result


def outside_work(result: dict, mode: str) -> float:
    """Wall time beyond the stage work itself: the wall minus the videos' stage seconds spread over the
    CPU_TASKS slots every phase runs with. Less sensitive than the wall to how fast the work itself ran (this VM's
    per-video stage time varies run to run), it is what orchestration, process starts and model loads cost."""
    compute = sum(p["compute_s"] for p in result.get(f"{mode}_phases", {}).values())
    return result[f"{mode}_s"] - compute / CPU_TASKS


def table(results: list[dict]) -> list[str]:
    lines = ["| videos | video s each | videos per CPU / GPU task | direct CLI s | Airflow DAG runs s | task instances "
             "| overhead | outside stage work, direct / Airflow s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        lines.append(f"| {r['videos']} | {r['video_s']:.0f} | {r['cpu_videos_per_task']} / {r['gpu_videos_per_task']} "
                     f"| {r['direct_s']:.0f} | {r['airflow_s']:.0f} | {r['task_instances']} | {r['overhead']:+.1%} "
                     f"| {outside_work(r, 'direct'):.0f} / {outside_work(r, 'airflow'):.0f} |")
    return lines


def phase_table(results: list[dict]) -> list[str]:
    """Where the time went, per phase and mode: span (first video claimed to last finished) and compute (the
    videos' own stage seconds); "between" is the wall time outside every span (for Airflow, scheduling the next
    phase's run and its claim task)."""
    lines = ["| videos | per CPU task | phase | direct span s | direct compute s | Airflow span s "
             "| Airflow compute s |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        direct_phases, airflow_phases = r.get("direct_phases", {}), r.get("airflow_phases", {})
        for stage in RECIPES["textbook"].stages:
            d, a = direct_phases.get(stage), airflow_phases.get(stage)
            if d and a:
                lines.append(f"| {r['videos']} | {r['cpu_videos_per_task']} | {stage} | {d['span_s']:.0f} "
                             f"| {d['compute_s']:.0f} | {a['span_s']:.0f} | {a['compute_s']:.0f} |")
        between = {mode: r[f"{mode}_s"] - sum(p["span_s"] for p in r.get(f"{mode}_phases", {}).values())
                   for mode in ("direct", "airflow")}
        lines.append(f"| {r['videos']} | {r['cpu_videos_per_task']} | between | {between['direct']:.0f} | "
                     f"| {between['airflow']:.0f} | |")
    return lines


def airflow_cpu(result: dict) -> float:
    """CPU seconds Airflow itself used: the CPU outside the stage processes through Airflow, less the same figure
    for the direct run (the database server and the idle services, which both runs pay)."""
    return result["airflow_cpu"]["outside_cpu_s"] - result["direct_cpu"]["outside_cpu_s"]


def airflow_cpu_share(result: dict) -> float:
    """Airflow's own CPU as a share of the stage processes' CPU through Airflow (the target's measure)."""
    return airflow_cpu(result) / result["airflow_cpu"]["stage_cpu_s"]


def cpu_table(results: list[dict]) -> list[str]:
    """Where the CPU went (CpuMeter), per mode, and Airflow's own CPU as a share of the stage processes' CPU."""
    lines = ["| videos | per CPU task | machine busy CPU s, direct / Airflow | stage processes CPU s, direct / Airflow "
             "| outside the stages CPU s, direct / Airflow | Airflow's own CPU s | share of the stages' CPU |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        d, a = r["direct_cpu"], r["airflow_cpu"]
        lines.append(f"| {r['videos']} | {r['cpu_videos_per_task']} | {d['busy_cpu_s']:.0f} / {a['busy_cpu_s']:.0f} "
                     f"| {d['stage_cpu_s']:.0f} / {a['stage_cpu_s']:.0f} "
                     f"| {d['outside_cpu_s']:.0f} / {a['outside_cpu_s']:.0f} | {airflow_cpu(r):.0f} "
                     f"| {airflow_cpu_share(r):.1%} |")
    return lines


def per_video_table(results: list[dict]) -> list[str]:
    """What orchestration costs per video and per phase run, the figures that carry to a cluster: there the stages
    run on other nodes, so Airflow's own CPU is what its nodes need per video, and the added wall per phase run is
    the latency each phase adds (scheduling its run, its claim task, mapping, publishing), not slowed stage work."""
    phases = len(RECIPES["textbook"].stages)
    lines = ["| videos | per CPU task | Airflow's own CPU s per video | added wall s per phase run "
             "| added wall s per video |", "| --- | --- | --- | --- | --- |"]
    for r in results:
        added = r["airflow_s"] - r["direct_s"]
        lines.append(f"| {r['videos']} | {r['cpu_videos_per_task']} | {airflow_cpu(r) / r['videos']:.2f} "
                     f"| {added / phases:+.1f} | {added / r['videos']:+.2f} |")
    return lines


def airflow_parts_table(results: list[dict]) -> list[str]:
    """Airflow's own processes' CPU during the Airflow run, by part (sampled: see CpuMeter)."""
    lines = ["| videos | per CPU task | " + " | ".join(name for name, _ in AIRFLOW_PARTS) + " |",
             "| --- | --- | " + " | ".join("---" for _ in AIRFLOW_PARTS) + " |"]
    for r in results:
        parts = r["airflow_cpu"]["airflow_parts_cpu_s"]
        lines.append(f"| {r['videos']} | {r['cpu_videos_per_task']} | "
                     + " | ".join(f"{parts[name]:.0f}" for name, _ in AIRFLOW_PARTS) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, nargs="+", help=f"numbers of videos (default: the runs {RUNS})")
    parser.add_argument("--seconds", type=float, default=12.0, help="length of each video")
    parser.add_argument("--cpu-videos-per-task", type=int, nargs="+", default=[1],
                        help="LECTERN_CPU_VIDEOS_PER_TASK values to measure each of --videos with")
    parser.add_argument("--gpu-videos-per-task", type=int, default=GPU_VIDEOS_PER_TASK)
    args = parser.parse_args()
    runs = [(n, k) for n in args.videos for k in args.cpu_videos_per_task] if args.videos else RUNS
    results = []
    for n, per_task in runs:
        results.append(overhead(n, args.seconds, per_task, args.gpu_videos_per_task))
        print(json.dumps(results[-1]), flush=True)
    print(f"\nAirflow overhead on {machine()}\n")
    print("\n".join(table(results)))
    print("\nPer phase\n")
    print("\n".join(phase_table(results)))
    print("\nCPU\n")
    print("\n".join(cpu_table(results)))
    print("\nPer video and per phase run\n")
    print("\n".join(per_video_table(results)))
    print("\nAirflow's processes' CPU s, by part\n")
    print("\n".join(airflow_parts_table(results)))


if __name__ == "__main__":
    main()
