"""`pip install .` in a fresh venv gives a `lectern` command that runs: its dependencies declared (from the images'
requirement files), every command listed, a stage run on a video; the dev harness (lectern_dev) not in it. Also
the guard on the GPU worker's lock: a package for every CUDA library its ctranslate2 and torch load (read from the
dev venv's ctranslate2 and torch; `make test-images` loads each in the built image)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lectern.cli import build_parser
from tests.conftest import ROOT
from tests.images import cuda_libraries
from tests.unit.test_runner import discover

VIDEO = "photosynthesis"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with `pip install <source>` (uv, from the dev venv's package cache). The source is a copy of
    what the package is built from, so setuptools' build folder lands there, not in the checkout."""
    work = tmp_path_factory.mktemp("package")
    source, venv = work / "source", work / "venv"
    shutil.copytree(ROOT / "include", source / "include", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", *(path.name for path in ROOT.glob("requirements*.txt"))):
        shutil.copy(ROOT / name, source / name)
    uv = Path(sys.executable).with_name("uv")
    subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run([str(uv), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), str(source)],
                   check=True, timeout=900)
    return venv / "bin"


def clean_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without its Lectern settings or its own import path."""
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("LECTERN_") and key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**environment, **(env or {})}


def lectern(bin_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / "lectern"), *args], env=clean_environment(env), capture_output=True,
                          text=True, timeout=600)


def test_pip_install_gives_a_lectern_command_with_every_command(installed):
    proc = lectern(installed, "--help")
    assert proc.returncode == 0, proc.stderr
    commands = next(action for action in build_parser()._actions if action.dest == "command").choices
    assert set(commands) <= set(proc.stdout.split("{", 1)[1].split("}", 1)[0].split(","))
    assert subprocess.run([str(installed / "python"), "-c", "import lectern_dev"], env=clean_environment(),
                          capture_output=True).returncode
    demo = lectern(installed, "demo")
    assert demo.returncode == 2 and "needs a checkout of Lectern" in demo.stderr  # the harness is the checkout's


def test_the_installed_command_runs_a_stage_on_a_video(installed, tmp_path, corpus_server):
    env = {"LECTERN_HOME": str(tmp_path), "LECTERN_DB_URL": f"sqlite:///{tmp_path}/state.db",
           "LECTERN_STORE_URL": f"file://{tmp_path}/store", "LECTERN_DOWNLOAD_ALLOW_NETWORKS": "127.0.0.0/8"}
    assert lectern(installed, "db", "upgrade", env=env).returncode == 0
    discover(env["LECTERN_DB_URL"], (VIDEO, f"{corpus_server.base_url}/{VIDEO}.mp4"))
    proc = lectern(installed, "stage", "download", "--video-id", VIDEO, env=env)
    assert f"[{VIDEO}] download: succeeded" in proc.stdout + proc.stderr, proc.stderr[-2000:]
    assert list((tmp_path / "store").rglob("*.mp4"))


def test_the_worker_lock_carries_every_cuda_library_ctranslate2_and_torch_load():
    """ctranslate2 dlopens libcublas.so.12 (CUDA 12); torch 2.13 from PyPI brings CUDA 13's: a lock with only
    torch's would build a worker whose every transcription fails on its first segment."""
    assert "libcublas.so.12" in cuda_libraries.ctranslate2_sonames()
    assert cuda_libraries.missing_from_lock((ROOT / "locks" / "worker.txt").read_text()) == []
    without = "\n".join(line for line in (ROOT / "locks" / "worker.txt").read_text().splitlines()
                        if not line.startswith("nvidia-cublas-cu12=="))
    assert cuda_libraries.missing_from_lock(without) == ["libcublas.so.12 (ctranslate2)"]
