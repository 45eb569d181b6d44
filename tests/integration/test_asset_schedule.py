"""The phases chain through Assets with a real scheduler (Airflow's api-server, scheduler, dag-processor and
triggerer as local processes, LocalExecutor, Postgres): a pairs subject's video, once discovered, is downloaded and
reaches keyframes with no trigger after discover's and no cron (LECTERN_BACKLOG_CRON empty), while the textbook's
GPU phases (transcribe, judge) are paused. Keyframes follows download in the pairs recipe and judge in the
textbook: its DAG runs on either Asset, and here on download's."""

from __future__ import annotations

import json
import os
import urllib.request

import pytest

from lectern.config import Settings
from lectern.local_airflow import LocalAirflow
from lectern.phase_tasks import pool_definitions
from lectern.state.db import session_scope
from lectern.state.reports import stage_rows
from tests.conftest import create_pg_database, drop_pg_database, model_environment

pytestmark = pytest.mark.integration


def call(airflow: LocalAirflow, method: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(f"{airflow.url}{path}", method=method, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_a_pairs_subject_reaches_keyframes_through_assets_alone(tmp_path, pg_server, tiny_models, corpus_server):
    state_db, state_url = create_pg_database()
    meta_db, meta_url = create_pg_database(migrated=False)
    subjects = tmp_path / "subjects"
    subjects.mkdir()
    (subjects / "clips.jsonl").write_text(json.dumps({"id": "clip1", "label": "Nature",
                                                      "url": f"{corpus_server.base_url}/photosynthesis.mp4"}) + "\n")
    (subjects / "short_clips.yaml").write_text("subject: Short clips\nrecipe: pairs\nmanifest: clips.jsonl\n")
    env = {**model_environment(tiny_models), "LECTERN_HOME": str(tmp_path), "LECTERN_DB_URL": state_url,
           "LECTERN_STORE_URL": f"file://{tmp_path / 'store'}", "LECTERN_SUBJECTS_DIR": str(subjects),
           "LECTERN_BACKLOG_CRON": ""}
    airflow = LocalAirflow(tmp_path, {**os.environ, **env}, metadata_db_url=meta_url)
    try:
        airflow.start(pool_definitions(Settings.from_env(env)))
        airflow.wait_until(lambda: airflow.get("/api/v2/dags/lectern_keyframes"), 240, "the DAGs to be parsed")
        for dag_id in ("lectern_transcribe", "lectern_judge"):  # no GPU today: the textbook's GPU phases paused
            assert call(airflow, "PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": True})["is_paused"]
        call(airflow, "POST", "/api/v2/dags/lectern_discover/dagRuns",
             {"logical_date": None, "conf": {"subject": "Short clips"}})

        def keyframes_done():
            with session_scope(state_url) as session:
                rows = {row.stage: row.status for row in stage_rows(session, video_ids=["clip1"])}
            return rows if rows.get("keyframes") in ("succeeded", "rejected", "failed") else None

        rows = airflow.wait_until(keyframes_done, 600, "clip1 to reach keyframes through the Assets", interval=5)
        assert rows["download"] == rows["keyframes"] == "succeeded", rows
        for dag_id in ("lectern_download", "lectern_keyframes"):
            runs = airflow.get(f"/api/v2/dags/{dag_id}/dagRuns")["dag_runs"]
            assert runs and {run["run_type"] for run in runs} == {"asset_triggered"}, runs
        [run] = airflow.get("/api/v2/dags/lectern_keyframes/dagRuns")["dag_runs"]
        events = airflow.get(f"/api/v2/dags/lectern_keyframes/dagRuns/{run['dag_run_id']}/upstreamAssetEvents")
        assert [event["uri"] for event in events["asset_events"]] == ["lectern://phases/download"], events
    finally:
        airflow.stop()
        drop_pg_database(state_db)
        drop_pg_database(meta_db)
