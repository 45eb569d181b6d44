"""``python -m lectern ui``: a home's Lectern in a running Airflow UI on this machine, to operate it the way its
users do (trigger forms, a subject backfill, per-video logs, reruns): the DAG runs of `lectern run` and the demo
are there, with their task logs.

It uses the settings the home was run with (lectern.local_run.saved_settings; the caller's environment wins).
With ``--demo`` it also serves the demo corpus on loopback and writes the Biology taxonomy and a second subject,
Biochemistry, to backfill. Airflow's metadata DB is SQLite in $LECTERN_HOME/airflow unless
AIRFLOW__DATABASE__SQL_ALCHEMY_CONN names another. Ctrl-C stops Airflow (its whole process group)."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from lectern.config import Settings


def run_ui(settings: Settings, port: int, demo: bool = False) -> int:
    from lectern.local_airflow import LocalAirflow
    from lectern.local_run import run_environment
    from lectern.phase_tasks import pool_definitions
    from lectern.state.db import migrate

    home = settings.home
    print(f"Lectern in Airflow, home {home}")
    env = run_environment(home)  # LocalAirflow sets its own home, DAGs and executor over these
    with contextlib.ExitStack() as stack:
        if demo:
            env = demo_environment(home, env, stack)
        settings = Settings.from_env(env)
        migrate(settings.db_url)
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even where the shell left SIGINT ignored
        airflow = LocalAirflow(home, env, metadata_db_url=os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"),
                               port=port)
        print("starting Airflow (api-server, scheduler, dag-processor, triggerer) ...", flush=True)
        try:
            airflow.start(pool_definitions(settings))
            subject = "Biochemistry (or Biology)" if demo else "its name"
            print(f"""
Airflow UI: {airflow.url}   (no login: it listens on loopback only; its processes log to {airflow.log_file})

  Backfill a subject:  Dags > lectern_backfill_subject > Trigger, Subject = {subject}
  One video's log:     python -m lectern status VIDEO_ID   (LECTERN_HOME={home}) prints each phase's log link;
                       a task's Details tab has a "Lectern video" link to the video's state and artifacts
  Rerun one video:     Dags > lectern_<phase> > Trigger, Video ids = VIDEO_ID, Force on

Ctrl-C stops Airflow.""", flush=True)
            while not stop and airflow.running():
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            print("stopping Airflow ...", flush=True)
            airflow.stop()
    return 0


def demo_environment(home, env: dict[str, str], stack: contextlib.ExitStack) -> dict[str, str]:
    """The demo's settings under `env`, its corpus served (until `stack` closes) and its two subjects written."""
    from lectern_dev.corpus import backfill_subject_yaml, generate, subject_yaml
    from lectern_dev.demo import demo_settings
    from lectern_dev.server import CorpusServer
    from lectern_dev.tiny_models import build_all

    print("building (or reusing) the tiny local models and the demo corpus ...", flush=True)
    models = build_all(Settings.from_env(env).models_dir)
    corpus = home / "demo-corpus"
    generate(corpus)
    env = {**demo_settings(models), **env}
    server = stack.enter_context(CorpusServer(corpus))
    subjects = Settings.from_env(env).subjects_dir
    subjects.mkdir(parents=True, exist_ok=True)
    (subjects / "biology.yaml").write_text(subject_yaml(server.base_url))
    (subjects / "biochemistry.yaml").write_text(backfill_subject_yaml(server.base_url))
    return env
