"""Server outages mid-run: a real Postgres server crashes (immediate shutdown) and restarts while stages are
recording their results, and the S3 server is unreachable (through a TCP proxy) while a stage stores its output. Every
video still ends in the state the store agrees with, and none is lost or stored twice."""

from __future__ import annotations

import hashlib
import threading
import time
from urllib.parse import urlsplit

import pytest

from lectern.config import Settings
from lectern.pipeline import artifact_key
from lectern.runner import EXIT_OK, EXIT_TRANSIENT, run_stage, run_stage_batch
from lectern.state.db import migrate
from lectern.store import Keys, store_from_settings
from tests.reliability.conftest import run_environment
from tests.reliability.proxy import TcpProxy
from tests.unit.test_runner import discover, row

pytestmark = pytest.mark.integration
VIDEOS = ("photosynthesis", "cell_division", "dna_replication")


def wait_until_claimed(settings, video_id: str, owner: str, timeout_s: float = 60.0) -> None:
    """Wait for the stage's claim to be committed: a crash before it would test the claim, not the recording."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        claimed = row(settings, video_id)
        if (claimed.status, claimed.lease_owner) == ("running", owner):
            return
        time.sleep(0.05)
    raise AssertionError(f"{video_id} was not claimed by {owner} within {timeout_s}s")


def same_bytes(store, video_id: str, corpus_dir) -> bool:
    stored = hashlib.sha256(store.get_bytes(artifact_key("download", "source", video_id))).hexdigest()
    return stored == hashlib.sha256((corpus_dir / f"{video_id}.mp4").read_bytes()).hexdigest()


def test_state_db_crash_and_restart_while_stages_record_their_results(postgres_cluster, slow_server, demo_corpus,
                                                                      tmp_path, record_fault, caplog):
    migrate(postgres_cluster.url)
    settings = Settings.from_env(run_environment(tmp_path, postgres_cluster.url))
    discover(postgres_cluster.url, *[(video_id, f"{slow_server}/{video_id}.mp4") for video_id in VIDEOS])
    codes = []
    batch = threading.Thread(target=lambda: codes.append(run_stage_batch("download", list(VIDEOS), settings,
                                                                         owner="pod-1")))
    caplog.set_level("WARNING", logger="lectern")
    batch.start()
    wait_until_claimed(settings, VIDEOS[0], "pod-1")  # the first download is under way, its lease taken
    time.sleep(0.5)
    postgres_cluster.crash()  # every backend killed, connections cut, new ones refused...
    time.sleep(5.0)
    postgres_cluster.start()  # ...and the server recovers from its WAL
    batch.join(timeout=240)
    assert codes == [EXIT_OK]
    assert any("state DB unreachable" in r.getMessage() for r in caplog.records)  # the outage did hit a stage
    store = store_from_settings(settings)
    for video_id in VIDEOS:
        final = row(settings, video_id)
        assert (final.status, final.attempts) == ("succeeded", 1), video_id
        assert same_bytes(store, video_id, demo_corpus[0]), video_id
    record_fault("state DB (Postgres) crashed mid-run, restarted 5 s later", 1, 1, 0)


def test_s3_unreachable_then_back(pg_url, s3_server, s3_bucket, corpus_server, demo_corpus, tmp_path, record_fault):
    endpoint = urlsplit(s3_server)
    proxy = TcpProxy(endpoint.hostname, endpoint.port)
    settings = Settings.from_env(run_environment(tmp_path, pg_url, f"http://127.0.0.1:{proxy.port}", s3_bucket,
                                                 LECTERN_RETRY_BACKOFF_SECONDS="1"))
    discover(pg_url, ("photosynthesis", f"{corpus_server.base_url}/photosynthesis.mp4"))
    proxy.down()
    assert run_stage("download", "photosynthesis", settings, owner="task-1", run_id="run-1") == EXIT_TRANSIENT
    failed = row(settings, "photosynthesis")
    assert (failed.status, failed.error_kind) == ("failed", "transient") and failed.retry_at is not None
    assert failed.error_class == "EndpointConnectionError", failed.error_class
    proxy.up()
    # Airflow's retry of the task (same run): the store is back, the video goes through
    assert run_stage("download", "photosynthesis", settings, owner="task-1", run_id="run-1") == EXIT_OK
    done = row(settings, "photosynthesis")
    assert (done.status, done.attempts) == ("succeeded", 2)
    store = store_from_settings(settings)
    assert sorted(store.list(Keys.video("photosynthesis", ""))) == [artifact_key("download", "probe", "photosynthesis"),
                                                                   artifact_key("download", "source", "photosynthesis")]
    assert same_bytes(store, "photosynthesis", demo_corpus[0])
    record_fault("S3 server unreachable, then back", 1, 1, 0)


def test_state_db_down_longer_than_every_retry(postgres_cluster, slow_server, demo_corpus, tmp_path, monkeypatch,
                                               record_fault, caplog):
    """The DB stays away past the last retry: the stage gives up as transient (the pod's exit code), the video
    keeps its lease until it expires, and the next run redoes it -- the download is stored once, not lost."""
    from lectern import runner

    monkeypatch.setattr(runner, "DB_RETRY_DELAYS_S", (0.5, 1.0))
    migrate(postgres_cluster.url)
    settings = Settings.from_env(run_environment(tmp_path, postgres_cluster.url, LECTERN_LEASE_SECONDS="3"))
    video_id = "photosynthesis"
    discover(postgres_cluster.url, (video_id, f"{slow_server}/{video_id}.mp4"))
    codes = []
    stage = threading.Thread(target=lambda: codes.append(run_stage("download", video_id, settings, owner="pod-1")))
    caplog.set_level("WARNING", logger="lectern")
    stage.start()
    wait_until_claimed(settings, video_id, "pod-1")  # the download is under way (the slow server takes seconds)
    postgres_cluster.crash()
    stage.join(timeout=120)
    assert codes == [EXIT_TRANSIENT]
    assert any("state DB unreachable" in r.getMessage() and "trying again in 1s" in r.getMessage()
               for r in caplog.records)
    postgres_cluster.start()
    stranded = row(settings, video_id)
    assert (stranded.status, stranded.lease_owner) == ("running", "pod-1")  # the outcome never reached the DB
    time.sleep(3.5)  # the lease runs out
    assert run_stage("download", video_id, settings, owner="pod-2") == EXIT_OK
    done = row(settings, video_id)
    assert (done.status, done.attempts) == ("succeeded", 2)
    store = store_from_settings(settings)
    assert sorted(store.list(Keys.video(video_id, ""))) == [artifact_key("download", "probe", video_id),
                                                         artifact_key("download", "source", video_id)]
    assert same_bytes(store, video_id, demo_corpus[0])
    record_fault("state DB down longer than every retry, then back", 1, 1, 0)
