"""Each image's Python set, built as a venv from exactly that image's requirement files by the script the Dockerfile
runs (scripts/install-image.sh), runs what that image serves, on a short demo video:

- worker (stage pods): every textbook stage, without Airflow;
- airflow-local (compose, stages in the Airflow workers): the DAGs, and every stage;
- airflow (the Kubernetes-mode scheduler and friends): the DAGs in Kubernetes mode, the pools, a release.

The venvs are cached under the test cache, keyed by the requirement files and the script (the first build takes
minutes, from the same wheels the dev venv was built from)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CACHE, ROOT, model_environment
from tests.unit.test_runner import discover

pytestmark = pytest.mark.integration
SET_FILES = ("requirements.txt", "requirements-airflow.txt", "requirements-ml.txt", "scripts/install-image.sh",
             "locks/airflow.txt", "locks/airflow-local.txt", "locks/worker.txt")
TEXTBOOK = ("download", "transcribe", "judge", "keyframes", "ocr", "assemble")
VIDEO = "photosynthesis"


def image_venv(image: str) -> Path:
    """The venv of one image's Python set (built once per version of its files)."""
    digest = hashlib.sha256(image.encode())
    for name in SET_FILES:
        digest.update((ROOT / name).read_bytes())
    venv = CACHE / "image-venvs" / f"{image}-{digest.hexdigest()[:12]}"
    if not (venv / ".complete").exists():
        for stale in venv.parent.glob(f"{image}-*"):  # built from other versions of the files
            shutil.rmtree(stale, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        uv = Path(sys.executable).with_name("uv")  # the dev venv's uv, and its wheel cache
        subprocess.run([str(ROOT / "scripts" / "install-image.sh"), image], check=True, timeout=1800,
                       env={**os.environ, "PYTHON": str(venv / "bin" / "python"), "UV": str(uv)})
        (venv / ".complete").touch()
    return venv


def run(venv: Path, *args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    """`python ARGS` in the image's venv, with Lectern's code from this checkout (the image copies it in)."""
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    environment.update(env, PYTHONPATH=str(ROOT / "include"), PATH=f"{venv / 'bin'}:{environment['PATH']}")
    proc = subprocess.run([str(venv / "bin" / "python"), *args], env=environment, capture_output=True, text=True,
                          timeout=900)
    if check:
        assert proc.returncode == 0, (f"{' '.join(args)}: exit {proc.returncode}\n"
                                      f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc


def home_env(home: Path, tiny_models: dict[str, str]) -> dict[str, str]:
    from lectern.models import resolve_bundled

    # Weights come from outside an image (the hub, or a model cache volume): tiny.en and the language identifier
    # (Whisper base) as folders, here the ones the dev venv's packages carry (test requirements, not an image's).
    return {**model_environment(tiny_models), "LECTERN_WHISPER_MODEL": resolve_bundled("tiny.en"),
            "LECTERN_LANGUAGE_ID_MODEL": resolve_bundled("base", home / "models"),
            "LECTERN_HOME": str(home), "LECTERN_DB_URL": f"sqlite:///{home}/state.db",
            "LECTERN_STORE_URL": f"file://{home}/store", "LECTERN_DOWNLOAD_ALLOW_NETWORKS": "127.0.0.0/8"}


def run_every_stage(venv: Path, env: dict[str, str], corpus_url: str) -> None:
    run(venv, "-m", "lectern", "db", "upgrade", env=env)
    discover(env["LECTERN_DB_URL"], (VIDEO, f"{corpus_url}/{VIDEO}.mp4"))
    for stage in TEXTBOOK:
        proc = run(venv, "-m", "lectern", "stage", stage, "--video-id", VIDEO, env=env)
        assert f"[{VIDEO}] {stage}: succeeded" in proc.stderr + proc.stdout, (stage, proc.stderr[-2000:])


def dags_import(venv: Path, env: dict[str, str]) -> None:
    code = ("from airflow.dag_processing.dagbag import DagBag; import sys; "
            f"bag = DagBag(dag_folder={str(ROOT / 'dags')!r}); "
            "print(sorted(bag.dags), bag.import_errors); sys.exit(1 if bag.import_errors or not bag.dags else 0)")
    proc = run(venv, "-c", code, env=env)
    assert "lectern_transcribe" in proc.stdout


@pytest.mark.parametrize("image, files", [
    ("airflow", ("requirements-airflow.txt", "requirements.txt")),
    ("airflow-local", ("requirements-airflow.txt", "requirements.txt", "requirements-ml.txt")),
    ("worker", ("requirements.txt", "requirements-ml.txt")),
])
def test_each_lock_satisfies_its_image_requirement_files(image, files):
    """A requirement changed without `scripts/lock-images.sh` run again would build an image off its lock."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    locked = {}
    for line in (ROOT / "locks" / f"{image}.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.split(";")[0].strip().partition("==")
            locked[canonicalize_name(name)] = version
    for name in files:
        for line in (ROOT / name).read_text().splitlines():
            text = line.split("#")[0].strip()
            if not text:
                continue
            requirement = Requirement(text)
            version = locked.get(canonicalize_name(requirement.name))
            assert version is not None, f"{requirement.name} ({name}) is not in locks/{image}.txt"
            assert requirement.specifier.contains(version, prereleases=True), \
                f"locks/{image}.txt has {requirement.name}=={version}, {name} asks {requirement.specifier}"


def test_the_worker_image_runs_every_stage_without_airflow(tmp_path, corpus_server, tiny_models):
    venv = image_venv("worker")
    env = home_env(tmp_path, tiny_models)
    assert run(venv, "-c", "import airflow", env=env, check=False).returncode != 0  # the pods' image has no Airflow
    run_every_stage(venv, env, corpus_server.base_url)


def test_the_compose_image_runs_the_dags_and_every_stage(tmp_path, corpus_server, tiny_models, airflow_db):
    venv = image_venv("airflow-local")
    env = {**home_env(tmp_path, tiny_models), "AIRFLOW_HOME": os.environ["AIRFLOW_HOME"]}
    dags_import(venv, env)
    run_every_stage(venv, env, corpus_server.base_url)


def test_the_airflow_image_runs_the_dags_in_kubernetes_mode_and_builds_a_release(tmp_path, corpus_server,
                                                                                 tiny_models, airflow_db):
    worker, airflow = image_venv("worker"), image_venv("airflow")
    env = {**home_env(tmp_path, tiny_models), "AIRFLOW_HOME": os.environ["AIRFLOW_HOME"]}
    run_every_stage(worker, env, corpus_server.base_url)  # what the pods would have done
    dags_import(airflow, {**env, "LECTERN_EXECUTION": "kubernetes"})
    assert "lectern_gpu" in run(airflow, "-m", "lectern", "pools", env=env).stdout
    assert run(airflow, "-c", "import torch", env=env, check=False).returncode != 0  # no models in this image
    proc = run(airflow, "-m", "lectern", "release", "--name", "images", env=env)
    assert (tmp_path / "store" / "releases" / "images" / "manifest.json").is_file(), proc.stdout
