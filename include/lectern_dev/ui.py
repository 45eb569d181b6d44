"""``python -m lectern ui``: the demo's Lectern in a running Airflow UI on this machine, to operate it the way
its users do (trigger forms, a subject backfill, per-video logs, reruns).

It uses the demo's environment: the tiny local models, the demo corpus served on loopback, the Biology taxonomy
and a second subject, Biochemistry, to backfill. Airflow's metadata DB is SQLite in $LECTERN_HOME/airflow unless
AIRFLOW__DATABASE__SQL_ALCHEMY_CONN names another. Ctrl-C stops Airflow (its whole process group)."""

from __future__ import annotations

import os
import signal
import time

from lectern.config import Settings


def run_ui(settings: Settings, port: int) -> int:
    from lectern.local_airflow import LocalAirflow
    from lectern.phases import pool_definitions
    from lectern.state.db import migrate
    from lectern_dev.corpus import backfill_subject_yaml, generate, subject_yaml
    from lectern_dev.demo import demo_settings
    from lectern_dev.server import CorpusServer
    from lectern_dev.tiny_models import build_all

    home = settings.home
    print(f"Lectern in Airflow, home {home}")
    print("building (or reusing) the tiny local models and the demo corpus ...", flush=True)
    models = build_all(settings.models_dir)
    corpus = home / "demo-corpus"
    generate(corpus)
    env = {**demo_settings(models), "LECTERN_HOME": str(home), **os.environ}
    settings = Settings.from_env(env)
    migrate(settings.db_url)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even where the shell left SIGINT ignored
    with CorpusServer(corpus) as server:
        settings.subjects_dir.mkdir(parents=True, exist_ok=True)
        (settings.subjects_dir / "biology.yaml").write_text(subject_yaml(server.base_url))
        (settings.subjects_dir / "biochemistry.yaml").write_text(backfill_subject_yaml(server.base_url))
        airflow = LocalAirflow(home, env, metadata_db_url=os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"),
                               port=port)
        print("starting Airflow (api-server, scheduler, dag-processor, triggerer) ...", flush=True)
        try:
            airflow.start(pool_definitions(settings))
            print(f"""
Airflow UI: {airflow.url}   (no login: it listens on loopback only; its processes log to {airflow.log_file})

  Backfill a subject:  Dags > lectern_backfill_subject > Trigger, Subject = Biochemistry (or Biology)
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
