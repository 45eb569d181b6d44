"""Faults against real runs: concurrent claimers, a stuck lease, a stage killed with SIGKILL mid-video, and
reruns that must reproduce the same artifacts."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from lectern.config import Settings
from lectern.pipeline import artifact_key
from lectern.runner import EXIT_NOT_CLAIMABLE, EXIT_OK, run_stage
from lectern.state.db import session_scope
from lectern.state.models import VideoStage, utcnow
from lectern.state.transitions import claim_videos
from lectern.store import STALE_AFTER_S, Keys, store_from_settings
from tests.conftest import model_environment
from tests.reliability.conftest import run_environment
from tests.unit.test_runner import discover, row

pytestmark = pytest.mark.integration


def test_concurrent_claimers_never_take_the_same_video(db_url, record_fault):
    """On Postgres (SKIP LOCKED) and on the embedded SQLite (BEGIN IMMEDIATE) alike."""
    discover(db_url, *[(f"v{i:03d}", f"http://x/v{i}") for i in range(300)])
    claimers = 12

    def claim_all(n: int) -> list[str]:
        taken = []
        while True:
            with session_scope(db_url) as session:
                batch = claim_videos(session, "download", f"claimer-{n}", 7, 600, 3)
            if not batch:
                return taken
            taken += batch

    with ThreadPoolExecutor(claimers) as pool:
        results = list(pool.map(claim_all, range(claimers)))
    taken = [video for result in results for video in result]
    assert len(taken) == len(set(taken)) == 300  # every video once, none twice
    assert sum(1 for result in results if result) > 1  # they really ran side by side
    database = "SQLite" if db_url.startswith("sqlite") else "Postgres"
    record_fault(f"{claimers} concurrent claimers over 300 video-stages ({database})", 1, 1, 300 - len(set(taken)))


def test_a_stuck_lease_expires_and_does_not_block_the_rest(pg_url, record_fault):
    discover(pg_url, *[(f"v{i}", f"http://x/v{i}") for i in range(5)])
    with session_scope(pg_url) as session:
        assert claim_videos(session, "download", "crashed-run", 1, 3600, 3) == ["v0"]  # never comes back
        assert sorted(claim_videos(session, "download", "healthy-run", 10, 600, 3)) == ["v1", "v2", "v3", "v4"]
        session.get(VideoStage, ("v0", "download")).lease_expires_at = utcnow() - timedelta(seconds=1)
    with session_scope(pg_url) as session:
        assert claim_videos(session, "download", "next-run", 10, 600, 3) == ["v0"]  # reclaimed after expiry
        reclaimed = session.get(VideoStage, ("v0", "download"))
        assert reclaimed.lease_owner == "next-run" and reclaimed.attempts == 2
    record_fault("a lease whose owner never returns", 1, 1, 0)


KILL_AFTER_S = {"photosynthesis": 0.5, "cell_division": 2.0, "dna_replication": 3.5}  # start, middle, late


def kill_mid_stage(stage: str, video_id: str, env: dict, after: float) -> None:
    """Run `lectern stage` as a pod would, SIGKILL it `after` seconds into the video, and check it died holding
    its lease with nothing of this stage's final output stored."""
    settings = Settings.from_env(env)
    process = subprocess.Popen([sys.executable, "-m", "lectern", "stage", stage, "--video-id", video_id,
                                "--lease-owner", "doomed-run"], env={**os.environ, **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while row(settings, video_id, stage).status != "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(after)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed = row(settings, video_id, stage)
    assert (killed.status, killed.lease_owner) == ("running", "doomed-run"), video_id  # died holding its lease


def test_a_download_killed_mid_video_is_reclaimed_and_finishes_once(pg_url, s3_bucket, s3_server, slow_server,
                                                                    demo_corpus, tmp_path, record_fault, monkeypatch):
    env = run_environment(tmp_path, pg_url, s3_server, s3_bucket, LECTERN_LEASE_SECONDS="3")
    settings = Settings.from_env(env)
    store = store_from_settings(settings)
    discover(pg_url, *[(video_id, f"{slow_server}/{video_id}.mp4") for video_id in KILL_AFTER_S])
    survived = 0
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # the rescue run's temp dir: the killed one's
    for video_id, after in KILL_AFTER_S.items():
        kill_mid_stage("download", video_id, {**env, "TMPDIR": str(scratch)}, after)
        assert store.list(Keys.video(video_id, "")) == [], video_id  # nothing partial visible
        left = list(scratch.glob(f"lectern-video-{video_id}.download.*"))
        assert left, video_id  # the killed download's folder...
        for path in [*left, *left[0].rglob("*")]:
            os.utime(path, (time.time() - STALE_AFTER_S - 60,) * 2)  # ...left long enough to be stale
        time.sleep(3.5)  # the lease runs out
        assert run_stage("download", video_id, settings, owner="rescue-run") == EXIT_OK
        assert not list(scratch.iterdir()), video_id  # removed when the next run started (and its own at its end)
        done = row(settings, video_id)
        assert (done.status, done.attempts) == ("succeeded", 2), video_id
        keys = store.list(Keys.video(video_id, ""))
        # once each
        assert sorted(keys) == [artifact_key("download", "probe", video_id),
                                artifact_key("download", "source", video_id)], video_id
        original = (demo_corpus[0] / f"{video_id}.mp4").read_bytes()
        stored = store.get_bytes(artifact_key("download", "source", video_id))
        assert hashlib.sha256(stored).digest() == hashlib.sha256(original).digest()
        survived += 1
    record_fault("stage killed with SIGKILL mid-download, then reclaimed", len(KILL_AFTER_S), survived, 0)


def _kill_mid_write(store_root, key: str, tmp_path) -> Path:
    """Store `key` in a local store from another process, fed slowly through a FIFO, and SIGKILL it mid-file;
    returns the temporary file it left."""
    fifo = tmp_path / "feed"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    writer = subprocess.Popen([sys.executable, "-c", "import sys; from lectern.store import LocalStore; "
                               "LocalStore(sys.argv[1]).put_file(sys.argv[2], sys.argv[3])",
                               str(store_root), key, str(fifo)])
    with open(fifo, "wb") as feed:
        feed.write(os.urandom(2 << 20))  # copyfileobj reads 1 MiB at a time
        feed.flush()
        deadline = time.monotonic() + 30
        while not (partial := [p for p in Path(store_root).rglob(".*.tmp") if p.stat().st_size]):
            assert time.monotonic() < deadline, "the writer never started"
            time.sleep(0.05)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    return partial[0]


def test_a_write_killed_mid_file_is_removed_by_the_next_run_and_by_a_takedown(pg_url, corpus_server, tmp_path,
                                                                              monkeypatch, capsys, record_fault):
    from lectern.cli import main

    video_id = "photosynthesis"
    env = run_environment(tmp_path, pg_url, LECTERN_STORE_URL=f"file://{tmp_path}/store")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(env)
    store = store_from_settings(settings)
    discover(pg_url, (video_id, f"{corpus_server.base_url}/{video_id}.mp4"))
    partial = _kill_mid_write(tmp_path / "store", artifact_key("download", "source", video_id), tmp_path)
    assert store.list(Keys.video(video_id, "")) == []  # never visible...
    os.utime(partial, (time.time() - STALE_AFTER_S - 60,) * 2)
    assert run_stage("download", video_id, settings, owner="next-run") == EXIT_OK
    assert not partial.exists()  # ...and removed when the video's next run started
    partial = _kill_mid_write(tmp_path / "store", Keys.video(video_id, "extra.bin"), tmp_path)  # a fresh one
    assert main(["forget", video_id, "--reason", "takedown"]) == 0
    assert not [path for path in (tmp_path / "store" / "videos").rglob("*") if path.is_file()]  # nothing left
    record_fault("store write killed mid-file, then rerun and taken down", 2, 2, 0)


def test_a_stale_owner_resumed_after_its_lease_was_taken_writes_nothing(pg_url, slow_server, demo_corpus,
                                                                         tmp_path, record_fault):
    """Owner A is paused (SIGSTOP: a frozen VM, a long GC pause) mid-download past its lease, heartbeat included;
    owner B reclaims the video and stores it; A resumes and finishes its download. A's late write must be refused:
    the stored source stays B's, the row B's success."""
    video_id = "photosynthesis"
    env = run_environment(tmp_path, pg_url, LECTERN_STORE_URL=f"file://{tmp_path}/store", LECTERN_LEASE_SECONDS="2")
    settings = Settings.from_env(env)
    discover(pg_url, (video_id, f"{slow_server}/{video_id}.mp4"))
    owner_a = subprocess.Popen([sys.executable, "-m", "lectern", "stage", "download", "--video-id", video_id,
                                "--lease-owner", "owner-a"], env={**os.environ, **env},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while row(settings, video_id).status != "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # A is downloading
    owner_a.send_signal(signal.SIGSTOP)
    time.sleep(2.5)  # A's lease runs out: its heartbeat is frozen with it
    assert run_stage("download", video_id, settings, owner="owner-b") == EXIT_OK
    stored = tmp_path / "store" / artifact_key("download", "source", video_id)
    written_by_b = stored.stat().st_mtime_ns, stored.stat().st_ino
    owner_a.send_signal(signal.SIGCONT)
    output, _ = owner_a.communicate(timeout=120)
    assert owner_a.returncode == 75, output  # transient: its result is not recorded
    assert "writes are refused" in output, output
    assert (stored.stat().st_mtime_ns, stored.stat().st_ino) == written_by_b  # B's file, not overwritten by A
    done = row(settings, video_id)
    assert (done.status, done.attempts, done.lease_owner) == ("succeeded", 2, None)
    original = (demo_corpus[0] / f"{video_id}.mp4").read_bytes()
    assert hashlib.sha256(stored.read_bytes()).digest() == hashlib.sha256(original).digest()
    record_fault("stale owner resumed after its lease was taken: its late write refused", 1, 1, 0)


def test_a_stage_running_longer_than_its_lease_keeps_it(pg_url, slow_server, tmp_path, record_fault):
    """The heartbeat: a 2 s lease, a download of about 4 s. Another run trying to take the video meanwhile is
    refused throughout, and the first finishes on its first attempt."""
    import threading

    video_id = "photosynthesis"
    settings = Settings.from_env(run_environment(tmp_path, pg_url, LECTERN_LEASE_SECONDS="2"))
    discover(pg_url, (video_id, f"{slow_server}/{video_id}.mp4"))
    codes = []
    first = threading.Thread(target=lambda: codes.append(run_stage("download", video_id, settings, owner="long-run")))
    first.start()
    attempts_by_b = []
    while first.is_alive():
        time.sleep(0.5)
        attempts_by_b.append(run_stage("download", video_id, settings, owner="eager-run"))
    first.join()
    assert codes == [EXIT_OK] and len(attempts_by_b) >= 6  # well past the 2 s lease
    assert set(attempts_by_b[:-1]) == {EXIT_NOT_CLAIMABLE}  # (the last may come after it finished)
    assert (row(settings, video_id).status, row(settings, video_id).attempts) == ("succeeded", 1)
    record_fault("a stage running 2x past its lease, another run trying to take it", 1, 1, 0)


def test_a_transcription_killed_mid_video_is_reclaimed_and_finishes_once(pg_url, s3_bucket, s3_server,
                                                                         corpus_server, tiny_models, tmp_path,
                                                                         record_fault):
    env = {**model_environment(tiny_models),
           **run_environment(tmp_path, pg_url, s3_server, s3_bucket, LECTERN_LEASE_SECONDS="3")}
    settings = Settings.from_env(env)
    store = store_from_settings(settings)
    video_id = "photosynthesis"
    discover(pg_url, (video_id, f"{corpus_server.base_url}/{video_id}.mp4"))
    assert run_stage("download", video_id, settings, owner="setup") == EXIT_OK
    before = sorted(store.list(Keys.video(video_id, "")))
    kill_mid_stage("transcribe", video_id, env, after=2.0)  # loading the model or transcribing
    assert sorted(store.list(Keys.video(video_id, ""))) == before  # no transcript, partial or whole
    time.sleep(3.5)  # the lease runs out
    assert run_stage("transcribe", video_id, settings, owner="rescue-run") == EXIT_OK
    done = row(settings, video_id, "transcribe")
    assert (done.status, done.attempts) == ("succeeded", 2)
    # stored once
    stored = sorted(store.list(Keys.video(video_id, "")))
    assert stored == sorted([*before, artifact_key("transcribe", "asr", video_id)])
    assert store.get_json(artifact_key("transcribe", "asr", video_id))["segments"]
    record_fault("stage killed with SIGKILL mid-transcription, then reclaimed", 1, 1, 0)
