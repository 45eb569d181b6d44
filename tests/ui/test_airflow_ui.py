"""The operator's day in a real Airflow UI: a real Airflow 3 deployment (api-server, scheduler, dag-processor,
triggerer; LocalExecutor on a fresh Postgres) with the Lectern DAGs and plugin, driven by headless Chromium
(Playwright with Debian's chromium, no browser download).

A subject backfill is triggered through its trigger form and drains the demo corpus through every phase; one
video's log for one phase is found from `python -m lectern status` and read in the UI, its task's "Lectern video"
extra link leads to the plugin's page of that video, and the video is rerun for one phase through that phase's
trigger form. Screenshots go to test-artifacts/airflow-ui-*.png."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from urllib.parse import quote

import pytest

from lectern.config import Settings
from lectern.local_airflow import LocalAirflow
from lectern.phase_tasks import pool_definitions
from lectern.state.db import session_scope
from lectern.state.reports import funnel, furthest_rows, stage_rows
from lectern.store import store_from_settings
from lectern_dev.corpus import subject_yaml
from tests.conftest import ROOT, create_pg_database, drop_pg_database, model_environment

pytestmark = pytest.mark.integration

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Debian's chromium as root on a closed network: no sandbox, no background connections.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIDEO = "photosynthesis"


@pytest.fixture(scope="module")
def remote_logs(s3_server) -> dict[str, str]:
    """Airflow's remote task logs in a bucket of the real S3 server (Ceph RGW), through an aws connection (the
    Amazon provider), as compose and the chart values set them."""
    from tests.conftest import create_bucket

    bucket = create_bucket(s3_server)
    return {"AIRFLOW__LOGGING__REMOTE_LOGGING": "True",
            "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": f"s3://{bucket}/airflow-logs",
            "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID": "lectern_logs",
            "AIRFLOW_CONN_LECTERN_LOGS": json.dumps({
                "conn_type": "aws", "login": os.environ["LECTERN_TEST_S3_ACCESS_KEY"],
                "password": os.environ["LECTERN_TEST_S3_SECRET_KEY"],
                "extra": {"endpoint_url": s3_server, "region_name": "us-east-1"}})}


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, pg_server, tiny_models, corpus_server, remote_logs):
    home = tmp_path_factory.mktemp("lectern-ui")
    state_db, state_url = create_pg_database()
    meta_db, meta_url = create_pg_database(migrated=False)
    (home / "subjects").mkdir()
    (home / "subjects" / "biology.yaml").write_text(subject_yaml(corpus_server.base_url))
    env = {**model_environment(tiny_models), "LECTERN_HOME": str(home), "LECTERN_DB_URL": state_url,
           "LECTERN_STORE_URL": f"file://{home / 'store'}", "LECTERN_SUBJECTS_DIR": str(home / "subjects"),
           "LECTERN_BACKFILL_POLL_SECONDS": "3", **remote_logs}
    server = LocalAirflow(home, {**os.environ, **env}, metadata_db_url=meta_url)
    try:
        server.start(pool_definitions(Settings.from_env(env)))
        yield server
    finally:
        server.stop()
        assert not server.running(), f"Airflow processes outlived the stop: {server.members(server.process.pid)}"
        print(f"Airflow stopped {'after SIGKILL' if server.killed else 'on SIGTERM'}")
        drop_pg_database(state_db)
        drop_pg_database(meta_db)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "Debian's chromium is not installed: make system-packages installs it"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(60_000)
    yield page
    page.close()


def settings_of(airflow: LocalAirflow) -> Settings:
    return Settings.from_env(airflow.env)


def trigger_from_form(page, airflow: LocalAirflow, dag_id: str, fill) -> str:
    """Open the DAG's page, its trigger form, fill it, trigger; returns the new run's id (from the page it opens)."""
    page.goto(f"{airflow.url}/dags/{dag_id}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input[name=element_subject]").wait_for()
    fill(dialog)
    page.screenshot(path=str(ARTIFACTS / f"airflow-ui-{dag_id}-form.png"))
    dialog.get_by_role("button", name="Trigger").click()
    page.wait_for_url(f"**/dags/{dag_id}/runs/**")
    return page.url.split("/runs/", 1)[1].split("/")[0].replace("%3A", ":").replace("%2B", "+")


def wait_for_run(airflow: LocalAirflow, dag_id: str, run_id: str, timeout: float) -> dict:
    def finished():
        run = airflow.get(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")
        return run if run and run["state"] in ("success", "failed") else None

    return airflow.wait_until(finished, timeout, f"{dag_id} run {run_id} to finish", interval=3)


def task_states(airflow: LocalAirflow, dag_id: str, run_id: str) -> dict[str, str]:
    found = airflow.get(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances")
    return {ti["task_id"]: ti["state"] for ti in found["task_instances"]}


def lectern_cli(airflow: LocalAirflow, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "lectern", *args], env=airflow.env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_subject_backfill_triggered_from_the_ui_drains_it(airflow, page, demo_corpus):
    def fill(dialog):
        dialog.locator("input[name=element_subject]").fill("Biology")

    run_id = trigger_from_form(page, airflow, "lectern_backfill_subject", fill)
    run = wait_for_run(airflow, "lectern_backfill_subject", run_id, timeout=900)
    page.goto(f"{airflow.url}/dags/lectern_backfill_subject/runs/{quote(run_id, safe='')}")
    page.get_by_text("review_round").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "airflow-ui-backfill-run.png"))
    states = task_states(airflow, "lectern_backfill_subject", run_id)
    assert run["state"] == "success", states
    assert states["review_round"] == "success" and states["next_round"] == "skipped"  # drained in one round
    assert run["conf"]["subject"] == "Biology"
    # every phase DAG ran for the subject, triggered by the backfill
    for phase in ("discover", "download", "transcribe", "judge", "keyframes", "ocr", "assemble"):
        runs = airflow.get(f"/api/v2/dags/lectern_{phase}/dagRuns?run_type=operator_triggered")["dag_runs"]
        assert [r["conf"]["subject"] for r in runs] == ["Biology"], phase
    truth = demo_corpus[1]
    with session_scope(settings_of(airflow).db_url) as session:
        counts = funnel(session, "Biology")
        final = furthest_rows(session)
    assert counts["assemble"] == {"succeeded": len(set(truth["videos"]) - set(truth["off_topic"]))}
    assert (final["mitosis_broken"].status, final["mitosis_broken"].error_class) == ("failed", "CorruptMedia")
    assert (final["pasta_recipe"].stage, final["pasta_recipe"].status) == ("judge", "rejected")  # listed by hand
    # one release, the drained backfill's, and none per assemble batch
    assert states["release_drained"] == "success"
    store = store_from_settings(settings_of(airflow))
    manifests = [store.get_json(key) for key in store.list("releases/") if key.endswith("/manifest.json")]
    assert [(m["subject"], m["stats"]["videos"]) for m in manifests] == [("Biology", counts["assemble"]["succeeded"])]


def test_one_videos_log_for_one_phase_found_from_status_and_read_in_the_ui(airflow, page):
    status = lectern_cli(airflow, "status", VIDEO)
    links = [line.split("log: ", 1)[1].strip() for line in status.splitlines() if "log: " in line]
    assert len(links) == 6 and all(link.startswith(airflow.url) for link in links)
    ocr_link = next(link for link in links if "/dags/lectern_ocr/" in link)
    page.goto(ocr_link)
    # the mapped task is labelled with its video id, and its log is that video's OCR log
    page.get_by_text(f"run_stage [{VIDEO}]").first.wait_for()
    page.get_by_text(f"[{VIDEO}] ocr: succeeded").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "airflow-ui-task-log.png"))
    log = page.locator("body").inner_text()
    assert f"lectern stage ocr --video-id {VIDEO}" in log and "[cell_division]" not in log

    # the task's "Lectern video" extra link (plugin) leads to the video's state and artifacts
    page.goto(ocr_link + "/details")
    page.get_by_role("link", name="Lectern video", exact=True).click()
    page.wait_for_url(f"**/lectern/videos/{VIDEO}")
    page.get_by_role("heading").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "airflow-ui-lectern-video.png"), full_page=True)
    table = page.locator("tr.stage").all_inner_texts()
    assert [row.split("\t")[0] for row in table] == ["download", "transcribe", "judge", "keyframes", "ocr", "assemble"]
    assert all("succeeded" in row for row in table)
    images = page.locator("img")
    assert images.count() >= 1
    assert all(page.evaluate("(img) => img.naturalWidth", image.element_handle()) > 0 for image in images.all())


def test_task_logs_are_written_to_the_s3_server(airflow, remote_logs, s3_server):
    """Each task's log, uploaded by Airflow's task runner when the task ended (the log the test above read in the
    UI came from there): an OCR task's holds what the stage logged for the video."""
    import boto3

    bucket, prefix = remote_logs["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"][len("s3://"):].split("/", 1)
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1",
                      aws_access_key_id=os.environ["LECTERN_TEST_S3_ACCESS_KEY"],
                      aws_secret_access_key=os.environ["LECTERN_TEST_S3_SECRET_KEY"])
    keys = [item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
            for item in page.get("Contents", [])]
    dags = {part.split("=", 1)[1] for key in keys for part in key.split("/") if part.startswith("dag_id=")}
    assert {f"lectern_{phase}" for phase in ("download", "transcribe", "ocr", "assemble")} <= dags, keys[:20]
    ocr = [key for key in keys if "dag_id=lectern_ocr" in key and "task_id=run_stage" in key]
    texts = [s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode(errors="replace") for key in ocr]
    assert any(f"[{VIDEO}] ocr: succeeded" in text for text in texts), ocr


def test_the_runs_metrics_scraped_from_lectern_metrics(airflow):
    """`lectern metrics` on this run's state DB, scraped over HTTP and read by prometheus_client's parser: the
    videos per stage and state are the run's funnel (scraped again while a late asset-triggered run moves it)."""
    import time

    from tests.unit.test_metrics import running_exporter

    def state() -> dict:
        with session_scope(settings_of(airflow).db_url) as session:
            return {(stage, status): n for stage, by_status in funnel(session, None).items()
                    for status, n in by_status.items() if n}

    def videos(scraped: dict) -> dict:
        return {tuple(value for _, value in labels): n for (name, labels), n in scraped.items()
                if name == "lectern_videos"}  # labels sorted: (stage, status)

    with running_exporter(airflow.env) as scrape:
        scraped = videos(scrape())
        for _ in range(10):
            if scraped == state():
                break
            time.sleep(3)
            scraped = videos(scrape())
    assert scraped == state() and scraped[("assemble", "succeeded")] >= 1


def test_rerun_one_video_for_one_phase_from_its_trigger_form(airflow, page):
    settings = settings_of(airflow)
    with session_scope(settings.db_url) as session:
        before = {r.video_id: (r.run_id, r.attempts) for r in stage_rows(session, stage="ocr")}
    assembled_before = assembled_by(settings)
    assert assembled_before

    def fill(dialog):
        dialog.locator("textarea[name=element_video_ids]").fill(VIDEO)
        dialog.locator("label:has(input[name=element_force])").click()  # a switch, whose input is hidden
        assert dialog.locator("input[name=element_force]").is_checked()

    run_id = trigger_from_form(page, airflow, "lectern_ocr", fill)
    run = wait_for_run(airflow, "lectern_ocr", run_id, timeout=300)
    assert run["state"] == "success" and run["conf"]["video_ids"] == [VIDEO] and run["conf"]["force"] is True
    with session_scope(settings.db_url) as session:
        after = {r.video_id: (r.run_id, r.attempts, r.status) for r in stage_rows(session, stage="ocr")}
    assert after[VIDEO] == (run_id, 1, "succeeded")  # rerun by this run, from a clean slate
    assert {v: a[:2] for v, a in after.items() if v != VIDEO} == {v: b for v, b in before.items() if v != VIDEO}
    page.goto(f"{airflow.url}/dags/lectern_ocr/runs/{quote(run_id, safe='')}/tasks/run_stage/mapped/0")
    page.get_by_text(f"[{VIDEO}] ocr: succeeded").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "airflow-ui-rerun.png"))
    # the new OCR makes the video's assembly stale: the scheduler's asset-triggered assemble run redoes it
    airflow.wait_until(lambda: assembled_by(settings) not in (None, assembled_before), 300,
                       "the asset-triggered assemble run to reassemble the video")


def assembled_by(settings: Settings) -> str | None:
    """The run that assembled the video, once its assembly is succeeded."""
    with session_scope(settings.db_url) as session:
        row = stage_rows(session, video_ids=[VIDEO], stage="assemble")[0]
        return row.run_id if row.status == "succeeded" else None
