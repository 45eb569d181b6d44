"""`python -m lectern ui`, as the README tells a newcomer to run it: Airflow comes up on loopback with the Lectern
DAGs, plugin and pools (SQLite metadata DB, the embedded defaults), and SIGTERM stops all of it."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from lectern.local_airflow import free_port
from lectern.recipes import PHASES
from tests.conftest import CACHE

pytestmark = pytest.mark.integration


def test_ui_command_starts_airflow_with_lectern_and_stops_it(tmp_path, tiny_models, demo_corpus):
    port = free_port()
    env = {**os.environ, "LECTERN_HOME": str(tmp_path), "LECTERN_MODELS_DIR": str(CACHE / "models")}
    env.pop("LECTERN_DB_URL", None)
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    proc = subprocess.Popen([sys.executable, "-m", "lectern", "ui", "--demo", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Airflow UI: "):
                break
        assert f"Airflow UI: http://127.0.0.1:{port}" in "".join(lines), "".join(lines)

        def get(path):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
                return response.read()

        deadline = time.monotonic() + 120
        dags = []
        while time.monotonic() < deadline and len(dags) < len(PHASES) + 1:  # the dag-processor parses them
            dags = [d["dag_id"] for d in json.loads(get("/api/v2/dags"))["dags"]]
            time.sleep(2)
        assert "lectern_backfill_subject" in dags and len(dags) == len(PHASES) + 1  # a DAG per phase, the backfill
        pools = {p["name"]: p["slots"] for p in json.loads(get("/api/v2/pools"))["pools"]}
        assert {"lectern_gpu", "lectern_download"} <= set(pools)
        assert b"Lectern videos" in get("/lectern/videos")  # the plugin's pages
        taxonomies = sorted(p.name for p in (tmp_path / "subjects").iterdir())
        assert taxonomies == ["biochemistry.yaml", "biology.yaml"]
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, rest
    assert "stopping Airflow" in rest
    assert processes_with(f"AIRFLOW_HOME={tmp_path / 'airflow'}") == []  # nothing it started is left


def processes_with(variable: str) -> list[str]:
    """Live processes (not zombies) whose environment holds `variable`."""
    from pathlib import Path

    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and variable.encode() in (entry / "environ").read_bytes().split(b"\0"):
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found
