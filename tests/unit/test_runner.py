"""One stage for one video through the runner: leases, outcomes, exit codes, and the state row that says why."""

import os

import pytest

from lectern.config import Settings
from lectern.pipeline import stage_config, stage_version
from lectern.runner import EXIT_NOT_CLAIMABLE, EXIT_OK, EXIT_PERMANENT, EXIT_TRANSIENT, run_stage
from lectern.state.catalog import FoundVideo, PointSpec, record_search, sync_subject
from lectern.state.db import session_scope
from lectern.state.models import VideoStage


@pytest.fixture
def settings(tmp_path, db_url):
    return Settings.from_env({"LECTERN_HOME": str(tmp_path), "LECTERN_DB_URL": db_url,
                              "LECTERN_RETRY_BACKOFF_SECONDS": "30",
                              "LECTERN_DOWNLOAD_ALLOW_NETWORKS": "127.0.0.0/8"})  # the loopback corpus server


def discover(db_url: str, *videos: tuple[str, str]) -> None:
    """(video id, url) pairs found by one knowledge point's search: each pending download."""
    with session_scope(db_url) as session:
        [point] = sync_subject(session, "Biology", [PointSpec("Photosynthesis", "Photosynthesis", "q")])
        record_search(session, point, [FoundVideo(video_id, url) for video_id, url in videos], {})


def row(settings, video_id, stage="download"):
    with session_scope(settings.db_url) as session:
        return session.get(VideoStage, (video_id, stage))


def test_success_records_artifacts_and_opens_the_next_stage(settings, corpus_server):
    discover(settings.db_url, ("photosynthesis", f"{corpus_server.base_url}/photosynthesis.mp4"))
    assert run_stage("download", "photosynthesis", settings, owner="run-1", run_id="run-1", map_index=4) == EXIT_OK
    done = row(settings, "photosynthesis")
    assert (done.status, done.attempts, done.run_id, done.map_index) == ("succeeded", 1, "run-1", 4)
    assert done.artifacts["source"] == "videos/photosynthesis/source.mp4" and done.metrics["duration_s"] > 20
    # the version, and the settings its hash is of: the release's lineage
    assert (done.version, done.config) == (stage_version("download", settings), stage_config("download", settings))
    assert row(settings, "photosynthesis", "transcribe").status == "pending"
    # already succeeded: not run again without --force
    assert run_stage("download", "photosynthesis", settings, owner="run-2") == EXIT_NOT_CLAIMABLE
    assert run_stage("download", "photosynthesis", settings, owner="run-2", force=True) == EXIT_OK
    assert row(settings, "photosynthesis").attempts == 1  # force starts a fresh count


def test_gone_video_fails_permanently(settings, corpus_server):
    discover(settings.db_url, ("gone", f"{corpus_server.base_url}/gone.mp4"))
    assert run_stage("download", "gone", settings) == EXIT_PERMANENT
    failed = row(settings, "gone")
    assert (failed.status, failed.error_class, failed.error_kind) == ("failed", "VideoUnavailable", "permanent")
    assert "404" in failed.error_message


def test_unreachable_server_is_transient_with_backoff(settings):
    discover(settings.db_url, ("offline", "http://127.0.0.1:9/offline.mp4"))  # nothing listens on port 9
    assert run_stage("download", "offline", settings, run_id="run-1") == EXIT_TRANSIENT
    failed = row(settings, "offline")
    assert (failed.status, failed.error_class, failed.error_kind) == ("failed", "DownloadFailed", "transient")
    assert failed.retry_at is not None
    # still backing off: a new attempt is refused until retry_at...
    assert run_stage("download", "offline", settings) == EXIT_NOT_CLAIMABLE
    # ...except Airflow's retry of the same run, which already waited its own retry delay
    assert run_stage("download", "offline", settings, run_id=failed.run_id) == EXIT_TRANSIENT
    assert row(settings, "offline").attempts == 2
    assert run_stage("download", "offline", settings, run_id=failed.run_id) == EXIT_PERMANENT  # attempts exhausted
    assert row(settings, "offline").error_kind == "permanent"


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_state_db_never_migrated_is_permanent_and_says_what_to_run(kind, tmp_path, make_pg_db, caplog):
    """No tables is not an outage: waiting does not make them, so no retry, and the message names the fix."""
    url = f"sqlite:///{tmp_path / 'empty.db'}" if kind == "sqlite" else make_pg_db(migrated=False)
    settings = Settings.from_env({"LECTERN_HOME": str(tmp_path), "LECTERN_DB_URL": url})
    assert run_stage("download", "photosynthesis", settings) == EXIT_PERMANENT
    assert "the state DB has no Lectern tables" in caplog.text and "run `lectern db upgrade`" in caplog.text
    assert "unreachable" not in caplog.text


def test_bad_video_id_is_refused(settings):
    with pytest.raises(ValueError, match="invalid video id"):
        run_stage("download", "../../etc/passwd", settings)


def test_batch_keeps_one_row_and_one_log_section_per_video(settings, corpus_server, caplog):
    from lectern.runner import run_stage_batch

    discover(settings.db_url, ("photosynthesis", f"{corpus_server.base_url}/photosynthesis.mp4"),
             ("gone", f"{corpus_server.base_url}/gone.mp4"),
             ("cell_division", f"{corpus_server.base_url}/cell_division.mp4"))
    with caplog.at_level("INFO", logger="lectern"):
        code = run_stage_batch("download", ["photosynthesis", "gone", "cell_division"], settings, owner="pod-1",
                               run_id="run-9", map_index=0)
    assert code == EXIT_PERMANENT  # the worst outcome: one video is gone
    assert [row(settings, v).status for v in ("photosynthesis", "gone", "cell_division")] == [
        "succeeded", "failed", "succeeded"]
    assert {row(settings, v).run_id for v in ("photosynthesis", "gone", "cell_division")} == {"run-9"}
    lines = [r.getMessage() for r in caplog.records]
    for video_id in ("photosynthesis", "gone", "cell_division"):
        start = lines.index(next(line for line in lines if line.startswith(f"===== [{video_id}] download (")))
        end = lines.index(next(line for line in lines if line.startswith(f"===== [{video_id}] download: end")))
        section = lines[start + 1:end]
        assert section and all(f"[{video_id}]" in line for line in section)  # nothing of another video inside


def test_batch_exit_code_is_the_worst_outcome(settings):
    from lectern.runner import run_stage_batch

    discover(settings.db_url, ("offline", "http://127.0.0.1:9/offline.mp4"))
    assert run_stage_batch("download", ["offline"], settings) == EXIT_TRANSIENT
    assert run_stage_batch("download", ["offline"], settings) == EXIT_NOT_CLAIMABLE  # backing off


def test_transient_retries_back_off_exponentially_with_jitter_until_the_last_attempt(settings):
    discover(settings.db_url, ("offline", "http://127.0.0.1:9/offline.mp4"))  # nothing listens on port 9
    delays = []
    for attempt in range(1, settings.max_attempts + 1):
        # Airflow's retry of the same run may go at once (it waited its own retry delay)
        assert run_stage("download", "offline", settings, run_id="run-1") in (EXIT_TRANSIENT, EXIT_PERMANENT)
        failed = row(settings, "offline")
        assert failed.attempts == attempt and failed.error_class == "DownloadFailed"
        if failed.retry_at is not None and attempt < settings.max_attempts:
            delays.append((failed.retry_at - failed.finished_at).total_seconds())
    assert failed.error_kind == "permanent"  # the last attempt is final, with its class and message kept
    assert "Connection refused" in failed.error_message
    base = settings.retry_backoff_seconds
    assert len(delays) == settings.max_attempts - 1
    for n, delay in enumerate(delays):  # base * 2^n, +-20 % jitter
        assert 0.8 * base * 2 ** n - 1 <= delay <= 1.2 * base * 2 ** n + 1, delays
    assert run_stage("download", "offline", settings, run_id="run-1") == EXIT_NOT_CLAIMABLE


def test_an_artifact_the_spec_does_not_declare_fails_the_video(settings, corpus_server, monkeypatch):
    """What later stages read is what specs say: a stage that records more fails, permanently, saying what, and
    records nothing of it."""
    from lectern.stage_types import StageResult
    from lectern.stages.download import run as download

    discover(settings.db_url, ("photosynthesis", f"{corpus_server.base_url}/photosynthesis.mp4"))
    monkeypatch.setattr(download, "run", lambda video, store, settings: StageResult.succeeded(
        {"source": "videos/photosynthesis/source.mp4", "extra": "videos/photosynthesis/extra.json"}, {}))
    assert run_stage("download", "photosynthesis", settings) == EXIT_PERMANENT
    failed = row(settings, "photosynthesis")
    assert (failed.status, failed.error_kind) == ("failed", "permanent")
    assert "does not declare: extra" in failed.error_message and not failed.artifacts


def test_json_logs_carry_the_video_the_stage_and_the_run(settings, tmp_path):
    """LECTERN_LOG_FORMAT=json: every line of a stage's log one JSON object, with video_id, stage and run_id."""
    import json
    import subprocess
    import sys

    discover(settings.db_url, ("gone", "http://127.0.0.1:9/gone.mp4"))  # nothing listens: the download fails
    env = {**os.environ, "LECTERN_HOME": str(tmp_path), "LECTERN_DB_URL": settings.db_url, "LECTERN_LOG_FORMAT": "json",
           "LECTERN_DOWNLOAD_ALLOW_NETWORKS": "127.0.0.0/8", "LECTERN_MAX_ATTEMPTS": "1"}
    proc = subprocess.run([sys.executable, "-m", "lectern", "stage", "download", "--video-id", "gone",
                           "--run-id", "manual__json"], env=env, capture_output=True, text=True, timeout=300)
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert records and proc.returncode != 0
    assert all({"time", "level", "logger", "message"} <= set(record) for record in records)
    stage_records = [r for r in records if r.get("video_id") == "gone"]
    assert stage_records and all((r["stage"], r["run_id"]) == ("download", "manual__json") for r in stage_records)
    assert any(r["level"] == "ERROR" and "failed" in r["message"] for r in stage_records)
