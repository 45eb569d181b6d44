"""``lectern run SUBJECT``: every phase DAG for one subject through a local Airflow (``airflow dags test``: a real
DAG run each, claim, one mapped task per video or group, publish), on the embedded defaults, with live progress on
stderr and, on stdout, the summary a person reads afterwards, the release and its export. ``lectern demo`` drives
its generated subject the same way.

A run holds a lock on its home while it (and its Airflow process) lives, so two runs never share one. It leaves a
note of the phase it is in; when a run is killed, the next one finds the note, makes that phase's videos it had
claimed claimable again at once (instead of waiting for their leases to run out), and goes on: every video-stage
already finished stays as it is."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lectern.config import Settings
from lectern.local_airflow import AIRFLOW, REPO, prepare_metadata
from lectern.recipes import PHASES, RECIPES, STAGES

NOTE = "lectern-run.json"  # the phase a run is in, left behind when it is killed
LOCK = "lectern-run.lock"


class HomeBusy(RuntimeError):
    """Another `lectern run` (or its Airflow process) is still working in this home."""


def airflow_environment(home: Path, dags_folder: Path = REPO / "dags") -> dict[str, str]:
    """The environment of a local Airflow whose home is under Lectern's `home`."""
    return {
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }


def run_environment(home: Path, dags_folder: Path | None = None) -> dict[str, str]:
    """What a run's Airflow and stage processes see: the settings the home was run with last (`lectern demo`
    saves its models there), then the caller's environment, which wins, then the local Airflow's."""
    return {**saved_settings(home), "LECTERN_HOME": str(home), **os.environ,
            **airflow_environment(home, dags_folder or REPO / "dags")}


def save_settings(home: Path, variables: dict[str, str]) -> None:
    """Keep the LECTERN_* settings of a run in its home, so `lectern run` and `lectern ui` use them again there."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "settings.json").write_text(json.dumps(dict(sorted(variables.items())), indent=1))


def saved_settings(home: Path) -> dict[str, str]:
    path = home / "settings.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def prepare_airflow(settings: Settings, env: dict[str, str]) -> None:
    """Both state DBs migrated (Lectern's and Airflow's), Lectern's pools created (a scheduler runs no task of a
    pool that does not exist; `dags test` ignores pools, a later `lectern ui` does not)."""
    from lectern.phase_tasks import pool_definitions
    from lectern.state.db import migrate

    migrate(settings.db_url)
    prepare_metadata(settings.home, env, pool_definitions(settings))


def lock_home(home: Path) -> int:
    """An exclusive lock on the home (its file descriptor), held by this process and the Airflow processes it
    starts, so a killed run whose Airflow still works keeps it too."""
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(home / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
        os.close(fd)
        raise HomeBusy(f"another lectern run is working in {home} ({holder or 'pid unknown'}); wait for it or stop "
                       "it first") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
    return fd


def resume(settings: Settings, home: Path) -> list[str]:
    """After a killed run: the videos its phase had claimed, claimable again now. Returns their ids."""
    from lectern.state.db import session_scope
    from lectern.state.transitions import release_interrupted

    note = home / NOTE
    if not note.is_file():
        return []
    left = json.loads(note.read_text())
    note.unlink()
    if left.get("phase") not in STAGES:
        return []
    with session_scope(settings.db_url) as session:
        return release_interrupted(session, left["phase"], f"lectern_{left['phase']}:",
                                   datetime.fromisoformat(left["started_at"]), settings.max_attempts)


@dataclass
class PhaseResult:
    phase: str
    code: int
    seconds: float
    log: Path


def run_phase_dag(phase: str, conf: dict, env: dict[str, str], log_dir: Path, settings: Settings, subject: str,
                  lock_fd: int | None = None) -> PhaseResult:
    """One real DAG run of a phase, watched until it ends; its output goes to `log_dir`/lectern_<phase>.log."""
    from lectern.progress import PhaseWatch

    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"lectern_{phase}.log"
    started = time.monotonic()
    with open(log, "w") as handle, PhaseWatch(settings, subject, phase) as watch:
        proc = subprocess.Popen([AIRFLOW, "dags", "test", f"lectern_{phase}", "-c", json.dumps(conf)],
                                stdout=handle, stderr=subprocess.STDOUT, env=env,
                                pass_fds=(lock_fd,) if lock_fd is not None else ())
        try:
            while proc.poll() is None:
                watch.update()
                time.sleep(1)
        finally:
            if proc.poll() is None:  # interrupted here (Ctrl-C, SIGTERM): stop the DAG run too
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        watch.update()
        watch.finish(proc.returncode)
    return PhaseResult(phase, proc.returncode, time.monotonic() - started, log)


def run_phases(settings: Settings, subject: str, release: str, env: dict[str, str], log_dir: Path,
               lock_fd: int) -> bool:
    """Every phase DAG in order for `subject` (assemble writes `release`); False at the first that fails. The
    caller holds the home's lock (`lock_fd`, passed on to Airflow); a killed run is resumed first."""
    from lectern.progress import console
    from lectern.state.models import utcnow

    home = settings.home
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        released = resume(settings, home)
        if released:
            console().print(f"resuming the interrupted run: {', '.join(released)} claimable again")
        for phase in PHASES:
            conf = {"subject": subject, **({"release": release} if phase == "assemble" else {})}
            (home / NOTE).write_text(json.dumps({"phase": phase, "subject": subject,
                                                 "started_at": utcnow().isoformat()}))
            result = run_phase_dag(phase, conf, env, log_dir, settings, subject, lock_fd)
            (home / NOTE).unlink(missing_ok=True)
            if result.code != 0:
                console().print(f"[red]the {phase} DAG run failed (exit {result.code}); see {result.log}[/red]")
                return False
        return True
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def summary(settings: Settings, subject: str) -> str:
    """The subject's funnel, then each video at the furthest stage it reached and why it stopped there."""
    from lectern.state.db import session_scope
    from lectern.state.reports import funnel, furthest_rows, why
    from lectern.stats import format_funnel

    with session_scope(settings.db_url) as session:
        lines = [format_funnel(funnel(session, subject)), ""]
        rows = sorted(furthest_rows(session, subject).items())
        width = max([18, *(len(video_id) for video_id, _ in rows)])
        for video_id, row in rows:
            reason = why(row)
            lines.append(f"  {video_id:<{width}} {row.stage:<10} {row.status}" + (f" ({reason})" if reason else ""))
    return "\n".join(lines)


def run_subject(settings: Settings, subject: str, release: str | None = None, env: dict[str, str] | None = None,
                log_dir: Path | None = None, started: float | None = None) -> int:
    """`lectern run`: every phase for `subject`, then the summary, the release and its export on stdout."""
    from lectern.discovery import TaxonomyError, load_subject, subject_file, subject_slug
    from lectern.export import export_internvid, export_release
    from lectern.progress import console
    from lectern.release import build_for
    from lectern.store import Keys, store_from_settings

    started = started or time.monotonic()
    home = settings.home
    env = env or run_environment(home)
    settings = Settings.from_env(env)
    try:
        definition = load_subject(subject_file(settings, subject), settings.allow_file_urls)
    except TaxonomyError as exc:
        print(f"run: {exc}", file=sys.stderr)
        return 2
    release = release or subject_slug(definition.name)
    log_dir = log_dir or home / "logs" / subject_slug(definition.name)
    try:
        lock_fd = lock_home(home)
    except HomeBusy as exc:
        print(f"run: {exc}", file=sys.stderr)
        return 2
    console().print(f"Lectern: subject {definition.name} in {home}; each phase's Airflow log is in {log_dir}")
    try:
        prepare_airflow(settings, env)
        if not run_phases(settings, definition.name, release, env, log_dir, lock_fd):
            return 1
    except KeyboardInterrupt:
        print(f"run: interrupted; `lectern run {subject!r}` again resumes where it stopped", file=sys.stderr)
        return 130
    finally:
        os.close(lock_fd)
    print(summary(settings, definition.name))
    store = store_from_settings(settings)
    kind = RECIPES[definition.recipe].release
    if kind is None:  # a recipe that releases nothing: its results are in the store
        return 0
    if kind == "pairs":
        manifest = build_for(definition.recipe, settings, name=release, subject=definition.name)
        stats = manifest["stats"]
        exported = export_internvid(store, release, home / "export" / release)
        print(f"\nReleased {stats['pairs']} pairs ({stats['filtered_clips']} clips filtered) from {stats['videos']} "
              f"of {known_videos(settings, definition.name)} videos in {time.monotonic() - started:.0f}s")
        print(f"Pairs:   {manifest['location']}   (stats: stats.md beside it)")
        print(f"Export:  {home / 'export' / release / exported['files'][0]}   (InternVid's columns)")
        return 0
    if not store.exists(Keys.release(release, "manifest.json")):
        print("\nno release was written: no video of the subject was assembled", file=sys.stderr)
        return 1
    stats = store.get_json(Keys.release(release, "manifest.json"))["stats"]
    exported = export_release(store, release, home / "export" / release, progress=lambda line: None)
    videos = known_videos(settings, definition.name)
    print()
    print(f"Released {stats['samples']} sample{'s' if stats['samples'] != 1 else ''} ({stats['images']} images, "
          f"{stats['tokens']} tokens) from {stats['videos']} of {videos} videos in {time.monotonic() - started:.0f}s")
    print(f"Samples: {store.uri(Keys.release(release, ''))}")
    print(f"Export:  {Path(exported['images_root']).parent}   (the paper's loader reads multimodal_textbook.json)")
    print(f"Viewer:  {store.uri(Keys.release(release, 'viewer.html'))}   (stats: stats.md beside it)")
    return 0


def known_videos(settings: Settings, subject: str) -> int:
    from lectern.state.db import session_scope
    from lectern.state.reports import funnel

    with session_scope(settings.db_url) as session:
        return sum(funnel(session, subject).get(STAGES[0], {}).values())
