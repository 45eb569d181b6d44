"""The Dockerfile's three targets built for real (buildah, chroot isolation) from a local Debian bookworm with Python
3.11 (lectern_dev.images), and each image running what it serves on a demo video:

- worker: `lectern stage …` for every textbook stage, home and store mounted, as the image's own user; and the GPU
  libraries CTranslate2 and torch load, each loaded (tests/images/cuda_libraries.py);
- airflow: the DAGs parse and `airflow dags list` shows every phase;
- airflow-local: one phase through `airflow dags test`.

Not in `make test` (the worker image alone is ~9 GB of CUDA wheels): `make test-images`, whose run is recorded in
bench/results/images.md."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from lectern_dev import images
from tests.conftest import ROOT
from tests.deploy.test_image_contents import home_env
from tests.unit.test_runner import discover

pytestmark = pytest.mark.images
TEXTBOOK = ("download", "transcribe", "judge", "keyframes", "ocr", "assemble")
PHASES = ("discover", "download", "transcribe", "judge", "keyframes", "ocr", "assemble", "caption",
          "backfill_subject")
VIDEO = "photosynthesis"
RECORD: dict = {}


@pytest.fixture(scope="module")
def base() -> str:
    images.prune()  # the disk filled once with three runs' untagged layers
    return images.local_base()


@pytest.fixture(scope="module")
def built(base, tmp_path_factory):
    """Each target built once (the airflow-local one on top of airflow's layers), its time and size recorded.
    LECTERN_IMAGES_FRESH=1 builds every layer again (the downloads still come from the cache mounts)."""
    logs = tmp_path_factory.mktemp("build-logs")
    made = {}
    fresh = os.environ.get("LECTERN_IMAGES_FRESH") == "1"

    def get(target: str) -> str:
        if target not in made:
            made[target] = images.build(target, base, log=logs / f"{target}.log", fresh=fresh)
            RECORD.setdefault("builds", {})[target] = made[target]
        return made[target]["image"]
    return get


@pytest.fixture
def home():
    """A home any user can write, as a pod's volume with its fsGroup (pytest's own folders are root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="lectern-image-home-", dir="/var/tmp"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def mounts(env: dict[str, str]) -> list[Path]:
    """The host folders the settings name (models, the home): mounted at the same paths."""
    found = set()
    for value in env.values():
        for part in value.split(","):
            path = Path(part)
            if path.is_absolute() and path.exists():
                found.add(path if path.is_dir() else path.parent)
    return sorted(found)


def airflow_environment(home: Path) -> dict[str, str]:
    """Airflow's metadata DB in the mounted home (each command runs in a fresh container), the DAGs and the plugin
    the image's own."""
    return {"AIRFLOW_HOME": str(home / "airflow"), "AIRFLOW__CORE__DAGS_FOLDER": "/opt/airflow/dags",
            "AIRFLOW__CORE__PLUGINS_FOLDER": "/opt/airflow/plugins"}


def ran(proc, what: str) -> str:
    assert proc.returncode == 0, f"{what}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def test_the_worker_image_runs_every_textbook_stage_as_its_own_user(built, home, corpus_server, tiny_models):
    image = built("worker")
    env = home_env(home, tiny_models)
    run = lambda *command: images.run_in(image, list(command), mounts(env), env)  # noqa: E731
    assert "uid=10001" in ran(run("id"), "id")
    assert "No module named 'airflow'" in run("python", "-c", "import airflow").stderr  # pods run without Airflow
    assert "stage" in ran(run("lectern", "--help"), "lectern --help")
    ran(run("lectern", "db", "upgrade"), "db upgrade")
    discover(env["LECTERN_DB_URL"], (VIDEO, f"{corpus_server.base_url}/{VIDEO}.mp4"))
    for stage in TEXTBOOK:
        output = ran(run("lectern", "stage", stage, "--video-id", VIDEO), stage)
        assert f"[{VIDEO}] {stage}: succeeded" in output, output[-2000:]
    assert list((home / "store").rglob("*.jsonl")) or list((home / "store").rglob("*.json"))


def test_the_worker_image_loads_every_cuda_library_ctranslate2_and_torch_load(built):
    image = built("worker")
    check = ROOT / "tests" / "images"
    proc = images.run_in(image, ["python", str(check / "cuda_libraries.py")], [check])
    ran(proc, "cuda_libraries.py")
    report = json.loads(proc.stdout)
    RECORD["cuda"] = report
    assert report["failed"] == {} and report["unresolved"] == {}
    assert report["ctranslate2_cuda_devices"] == 0  # no GPU here: a count, not an import or load error
    assert report["torch_cuda"] and report["torch_cuda_available"] is False
    assert report["loaded"]["ctranslate2 libcublas.so.12"].endswith("/nvidia/cublas/lib/libcublas.so.12")


def test_the_cuda_check_fails_where_the_cuda_12_cublas_is_not_on_the_loaders_path(built):
    """As in an image built from a lock without nvidia-cublas-cu12: CTranslate2 would not find libcublas.so.12."""
    check = ROOT / "tests" / "images"
    proc = images.run_in(built("worker"), ["python", str(check / "cuda_libraries.py")], [check],
                         env={"LD_LIBRARY_PATH": ""})
    assert proc.returncode == 1
    assert "libcublas.so.12: cannot open shared object file" in json.loads(proc.stdout)["failed"][
        "ctranslate2 libcublas.so.12"]


def test_the_airflow_image_lists_every_phase(built, home):
    image = built("airflow")
    proc = images.run_in(image, ["bash", "-c", "airflow db migrate >/dev/null && airflow dags reserialize >/dev/null"
                                 " && airflow dags list -o json"], env=airflow_environment(home),
                         mounts=[home])
    listed = json.loads(ran(proc, "airflow dags list").strip().splitlines()[-1])
    assert sorted(dag["dag_id"] for dag in listed) == sorted(f"lectern_{phase}" for phase in PHASES)
    assert all(dag["fileloc"].startswith("/opt/airflow/dags/") for dag in listed)


def test_the_airflow_local_image_runs_a_phase_through_airflow_dags_test(built, home, corpus_server, tiny_models):
    image = built("airflow-local")
    # the video listed here, not by the discover phase: no metadata scores for its download to wait on
    env = {**home_env(home, tiny_models), **airflow_environment(home), "LECTERN_EXECUTION": "local",
           "LECTERN_METADATA_JUDGE_MODEL": "", "LECTERN_METADATA_MIN_RELEVANCE": "0"}
    run = lambda command: images.run_in(image, ["bash", "-c", command], mounts(env), env)  # noqa: E731
    ran(run("lectern db upgrade && airflow db migrate >/dev/null"), "migrations")
    discover(env["LECTERN_DB_URL"], (VIDEO, f"{corpus_server.base_url}/{VIDEO}.mp4"))
    conf = json.dumps({"video_ids": [VIDEO]})
    output = ran(run(f"airflow dags test lectern_download -c '{conf}'"), "airflow dags test lectern_download")
    assert f"download: claimed 1 videos among {VIDEO}" in output
    from lectern.config import Settings
    from lectern.state.db import session_scope
    from lectern.state.models import VideoStage

    with session_scope(Settings.from_env(env).db_url) as session:
        row = session.get(VideoStage, (VIDEO, "download"))
        assert row.status == "succeeded", row.error_message
