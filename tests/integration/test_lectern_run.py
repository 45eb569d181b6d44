"""`lectern run`, as a researcher with a folder of their own lectures runs it on the embedded defaults (SQLite state
DB, local store, a local Airflow): a good video, a broken file and an audio-only file each end in a state that says
why; a run killed in the middle of transcribe is resumed by the next one, which redoes nothing that had finished;
progress goes to stderr, the summary and the export to stdout; `lectern ui` then serves the same DAG runs."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request

import pytest

from lectern.local_airflow import free_port
from tests.conftest import CACHE, model_environment
from tests.ui.test_ui_command import processes_with

pytestmark = pytest.mark.integration
SUBJECT = "My lectures"


@pytest.fixture(scope="module")
def home(tmp_path_factory, tiny_models, demo_corpus):
    root = tmp_path_factory.mktemp("lectern-run")
    lectures = root / "lectures"
    lectures.mkdir()
    corpus = demo_corpus[0]
    shutil.copy(corpus / "photosynthesis.mp4", lectures / "photosynthesis.mp4")
    shutil.copy(corpus / "mitosis_broken.mp4", lectures / "broken.mp4")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(corpus / "dna_replication.mp4"), "-vn", "-c:a",
                    "copy", str(lectures / "audio_only.m4a")], check=True)
    (root / "home" / "subjects").mkdir(parents=True)
    (root / "home" / "subjects" / "my_lectures.yaml").write_text(
        "subject: My lectures\ncourses:\n  - name: Biology\n    points:\n"
        f"      - name: Photosynthesis\n        videos_dir: {lectures}\n")
    return root / "home"


@pytest.fixture(scope="module")
def env(home, tiny_models) -> dict[str, str]:
    """A newcomer's shell (no LECTERN_* or AIRFLOW* of the test session), with the demo's models and settings
    but not its loopback allowance: local files need no server."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("LECTERN_", "AIRFLOW"))}
    settings = model_environment(tiny_models)
    settings.pop("LECTERN_DOWNLOAD_ALLOW_NETWORKS")
    return {**clean, **settings, "LECTERN_HOME": str(home), "LECTERN_MODELS_DIR": str(CACHE / "models")}


def lectern_run(env):
    return subprocess.Popen([sys.executable, "-m", "lectern", "run", SUBJECT], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def rows(home) -> dict[tuple[str, str], tuple]:
    """(video, stage) -> (status, attempts, finished_at), read from the run's SQLite state DB as it works."""
    try:
        with sqlite3.connect(f"file:{home / 'state.db'}?mode=ro", uri=True) as db:
            return {(v, s): (status, attempts, finished) for v, s, status, attempts, finished in
                    db.execute("select video_id, stage, status, attempts, finished_at from video_stages")}
    except sqlite3.OperationalError:  # not migrated yet, or busy with a write
        return {}


@pytest.fixture(scope="module")
def killed_then_resumed(home, env):
    """The first run, killed (its whole process group, Airflow included) while transcribe runs; then a second."""
    first = lectern_run(env)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and first.poll() is None:
        if rows(home).get(("photosynthesis", "transcribe"), ("",))[0] == "running":
            break
        time.sleep(0.5)
    assert first.poll() is None, first.communicate()
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate(timeout=60)
    deadline = time.monotonic() + 30
    while processes_with(f"LECTERN_HOME={home}") and time.monotonic() < deadline:
        time.sleep(0.5)
    before = rows(home)
    second = lectern_run(env)
    out, err = second.communicate(timeout=1200)
    return before, rows(home), second.returncode, out, err


def test_the_resumed_run_finishes_every_video_with_why(killed_then_resumed, home):
    before, after, code, out, err = killed_then_resumed
    assert before[("photosynthesis", "transcribe")][0] == "running"  # killed mid-stage, its lease still held
    assert code == 0, err[-3000:]
    assert after[("photosynthesis", "assemble")][0] == "succeeded"
    assert after[("broken", "download")][0] == "failed" and after[("audio_only", "download")][0] == "rejected"
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert "download   failed (CorruptMedia: ffprobe could not read broken.mp4" in lines["broken"]
    assert "download   rejected (no video stream)" in lines["audio_only"]
    assert "assemble   succeeded" in lines["photosynthesis"]
    assert "from 1 of 3 videos" in out


def test_the_resumed_run_redoes_nothing_that_had_finished(killed_then_resumed):
    before, after, *_ = killed_then_resumed
    finished = {key: row for key, row in before.items() if row[0] in ("succeeded", "rejected", "failed")}
    assert {("photosynthesis", "download"), ("broken", "download"), ("audio_only", "download")} <= set(finished)
    assert {key: after[key] for key in finished} == finished  # same status, attempts and finish time
    status, attempts, _ = after[("photosynthesis", "transcribe")]
    assert (status, attempts) == ("succeeded", 2)  # the interrupted attempt, then the one that finished


def test_progress_goes_to_stderr_and_the_export_to_stdout(killed_then_resumed, home):
    *_, out, err = killed_then_resumed
    assert "resuming the interrupted run: photosynthesis claimable again" in err
    assert "lectern_transcribe" in err and "lectern_transcribe" not in out
    assert any(line.split()[:3] == ["photosynthesis", "assemble", "succeeded"] for line in err.splitlines())
    export = home / "export" / "my_lectures"
    assert f"Export:  {export}" in out
    [sample] = json.loads((export / "multimodal_textbook.json").read_text())
    images = [image for image in sample["images"] if image]
    assert images and all(os.path.isfile(image) for image in images)


def test_a_second_run_while_one_works_is_refused(home, env, killed_then_resumed):
    import fcntl

    with open(home / "lectern-run.lock", "a+") as lock:  # as a running `lectern run` holds it
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = lectern_run(env)
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "another lectern run is working in" in err


def test_lectern_ui_serves_the_runs_of_this_home(home, env, killed_then_resumed):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lectern", "ui", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        for line in proc.stdout:
            if line.startswith("Airflow UI: "):
                break
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/dags/lectern_transcribe/dagRuns",
                                    timeout=30) as response:
            runs = json.loads(response.read())["dag_runs"]
        assert len(runs) == 2 and {run["conf"]["subject"] for run in runs} == {SUBJECT}  # the killed one, the resume
        assert sorted(p.name for p in (home / "subjects").iterdir()) == ["my_lectures.yaml"]  # no demo subjects
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, rest
