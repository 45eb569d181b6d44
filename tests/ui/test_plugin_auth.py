"""The plugin's pages behind Airflow's login: a real Airflow API app (its own create_app, SimpleAuthManager with
all-admins off, users logging in through its /auth/token) with the Lectern plugin mounted. Anonymous requests get
401 like Airflow's own API, a user whom the auth manager lets read no DAG gets 403, an admin gets the pages and
the video's file, and compose's non-admin user (a viewer) gets the pages but may trigger no DAG run."""

import json
import os
import subprocess
import sys

import pytest

from lectern.config import Settings
from lectern.pipeline import artifact_key
from lectern.state.catalog import FoundVideo, PointSpec, record_search, sync_subject
from lectern.state.db import migrate, session_scope
from lectern.state.transitions import claim_one, mark_succeeded
from lectern.store import LocalStore
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

VIDEO_BYTES = b"\x00\x00\x00\x18ftypmp42 not really a video, but the file the route streams"

# Run in its own process: Airflow reads its configuration (the auth manager, its users) once, at import.
CLIENT = r"""
import json, sys
from fastapi.testclient import TestClient
from airflow.api_fastapi.app import create_app

client = TestClient(create_app("core"))
paths = ["/api/v2/dags", "/lectern/videos", "/lectern/videos/lecture1.json", "/lectern/videos/lecture1",
         "/lectern/videos/lecture1/files/source.mp4"]
answers, triggers = {}, {}
for who in ("anonymous", "guest", "admin", "curator"):
    headers = {}
    if who != "anonymous":
        login = client.post("/auth/token", json={"username": who, "password": "secret-" + who})
        assert login.status_code == 201, login.text
        headers["Authorization"] = "Bearer " + login.json()["access_token"]
    answers[who] = {path: [client.get(path, headers=headers).status_code,
                           client.get(path, headers=headers).content.decode("latin-1")[:5000]] for path in paths}
    if who in ("admin", "curator"):  # a DAG run asked for (the DAG is not in this metadata DB: 404 past the check)
        triggers[who] = client.post("/api/v2/dags/lectern_download/dagRuns", json={"logical_date": None},
                                    headers=headers).status_code
answers["triggers"] = triggers
print(json.dumps(answers))
"""


def test_the_plugin_pages_need_a_login_and_read_access_to_the_phase_dags(tmp_path, airflow_db):
    settings = Settings.from_env({"LECTERN_HOME": str(tmp_path / "home")})
    migrate(settings.db_url)
    with session_scope(settings.db_url) as session:
        point = sync_subject(session, "Biology", [PointSpec("Cells", "Cells", "cells")])[0]
        record_search(session, point, [FoundVideo("lecture1", "http://x/lecture1.mp4", title="Lecture 1")], {})
        claim_one(session, "lecture1", "download", "test", 60, 3)
        key = LocalStore(settings.store_url.removeprefix("file://")).put_bytes(
            artifact_key("download", "source", "lecture1"), VIDEO_BYTES)
        mark_succeeded(session, "lecture1", "download", "test", {"source": key}, {})
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"admin": "secret-admin", "guest": "secret-guest", "curator": "secret-curator"}))
    env = {**os.environ, "LECTERN_HOME": str(tmp_path / "home"),
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
           "AIRFLOW__CORE__AUTH_MANAGER":
               "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
           # a user with no role (the auth manager lets it read nothing), and compose's viewer
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,guest:,curator:viewer",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
           "AIRFLOW__API_AUTH__JWT_SECRET": "a-test-secret-of-enough-length-0123456789"}
    proc = subprocess.run([sys.executable, "-c", CLIENT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    answers = json.loads(proc.stdout.strip().splitlines()[-1])
    triggers = answers.pop("triggers")
    statuses = {who: {path: status for path, (status, _) in paths.items()} for who, paths in answers.items()}
    assert set(statuses["anonymous"].values()) == {401}, statuses  # as Airflow's own /api/v2/dags
    guest = {path: status for path, status in statuses["guest"].items() if path.startswith("/lectern")}
    assert set(guest.values()) == {403}, statuses
    assert "may not read lectern_download" in answers["guest"]["/lectern/videos"][1]
    assert set(statuses["admin"].values()) == {200}, statuses
    assert "lecture1" in answers["admin"]["/lectern/videos"][1]
    assert answers["admin"]["/lectern/videos/lecture1/files/source.mp4"][1] == VIDEO_BYTES.decode("latin-1")
    assert set(statuses["curator"].values()) == {200}, statuses  # a viewer reads every phase, so the pages
    assert "lecture1" in answers["curator"]["/lectern/videos"][1]
    assert triggers["curator"] == 403 and triggers["admin"] != 403, triggers  # and triggers nothing
    compose = (ROOT / "docker-compose.yaml").read_text()
    assert "SIMPLE_AUTH_MANAGER_USERS: admin:admin,curator:viewer" in compose  # the same roles as compose's
    for who in ("anonymous", "guest"):  # nothing of the video reaches them
        assert not any("Lecture 1" in body or "ftypmp42" in body for _, body in answers[who].values())
