"""The Airflow plugin's per-video pages and extra link, served by its FastAPI app (no Airflow server needed),
on both state DBs and a local store, as an admin of Airflow's auth manager sees them (the login itself:
tests/ui/test_plugin_auth.py)."""

from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from lectern.config import Settings
from lectern.pipeline import artifact_key
from lectern.state.db import session_scope
from lectern.state.transitions import claim_one, claim_videos, mark_failed, mark_succeeded
from lectern.store import Keys, store_from_settings
from tests.unit.state.test_transitions import seed

RUN = "manual__2026-11-22T08:00:00+00:00"


@pytest.fixture
def app(db_url, tmp_path, monkeypatch, airflow_db):
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.security import get_user

    from lectern_airflow.plugin import create_app

    monkeypatch.setenv("LECTERN_HOME", str(tmp_path))
    monkeypatch.setenv("LECTERN_DB_URL", db_url)
    monkeypatch.setenv("LECTERN_AIRFLOW_URL", "http://airflow.example:8080")
    settings = Settings.from_env()
    store = store_from_settings(settings)
    seed(db_url, n=2)
    probe = store.put_json(artifact_key("download", "probe", "v0"), {"duration": 30.0})
    store.put_bytes(Keys.keyframe("v0", 0.0, 10.0, 1), b"\xff\xd8 a jpeg")
    with session_scope(db_url) as session:
        claim_videos(session, "download", "owner", 2, 60, 3)
        claim_one(session, "v0", "download", "owner", 60, 3, run_id=RUN, map_index=0)
        mark_succeeded(session, "v0", "download", "owner", {"probe": probe}, {"duration_s": 30.0}, "1-abc")
        claim_one(session, "v1", "download", "owner", 60, 3, run_id=RUN, map_index=1)
        mark_failed(session, "v1", "download", "owner", "CorruptMedia", "ffprobe could not read <x>", False, 3, 0)
    create_auth_manager()  # Airflow's configured one (SimpleAuthManager), as the api-server starts it
    plugin = create_app()
    plugin.dependency_overrides[get_user] = lambda: SimpleAuthManagerUser(username="admin", role="admin")
    return TestClient(plugin)


def test_video_page_shows_state_log_links_and_artifacts(app):
    page = app.get("/videos/v0")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "video 0" in page.text  # its title
    assert ("http://airflow.example:8080/dags/lectern_download/runs/manual__2026-11-22T08%3A00%3A00%2B00%3A00"
            "/tasks/run_stage/mapped/0") in page.text
    assert "/lectern/videos/v0/files/probe.json" in page.text and "1-abc" in page.text
    assert "/lectern/videos/v0/files/keyframes/v0%400.0_10.0%231.jpg" in page.text  # keys quoted for a URL
    assert app.get("/videos/v0/files/probe.json").json() == {"duration": 30.0}
    image = app.get("/videos/v0/files/keyframes/v0%400.0_10.0%231.jpg")
    assert image.content == b"\xff\xd8 a jpeg" and image.headers["content-type"] == "image/jpeg"
    report = app.get("/videos/v1.json").json()
    assert report["stages"][0]["why"] == "CorruptMedia: ffprobe could not read <x>"
    assert "ffprobe could not read &lt;x&gt;" in app.get("/videos/v1").text  # escaped


def test_unknown_videos_and_files_are_404s(app):
    assert app.get("/videos/nope").status_code == 404
    assert app.get("/videos/v0/files/missing.json").status_code == 404
    assert app.get("/videos/v0/files/../v1/probe.json").status_code == 404
    assert app.get("/videos/v0/files/keyframes/%2E%2E/%2E%2E/secret").status_code == 404


def test_a_task_link_leads_to_the_video_it_ran(app):
    from urllib.parse import quote

    response = app.get(f"/tasks/lectern_download/{quote(RUN, safe='')}/1", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/lectern/videos/v1"
    assert app.get(f"/tasks/lectern_download/{quote(RUN, safe='')}/7").status_code == 404
    assert app.get(f"/tasks/lectern_discover/{quote(RUN, safe='')}/0").status_code == 404


def test_index_lists_every_video_where_it_stopped(app):
    page = app.get("/videos").text
    assert "/lectern/videos/v0" in page and "/lectern/videos/v1" in page and "CorruptMedia" in page


def test_extra_link_only_on_per_video_tasks():
    from lectern_airflow.plugin import LecternVideoLink

    link = LecternVideoLink()

    def key(dag_id, task_id, map_index):
        return SimpleNamespace(dag_id=dag_id, task_id=task_id, run_id=RUN, map_index=map_index)

    assert link.get_link(None, ti_key=key("lectern_ocr", "run_stage", 3)).endswith(
        "/lectern/tasks/lectern_ocr/manual__2026-11-22T08%3A00%3A00%2B00%3A00/3")
    assert link.get_link(None, ti_key=key("lectern_ocr", "publish", -1)) == ""
    assert link.get_link(None, ti_key=key("lectern_discover", "search_point", 0)) == ""
    assert link.get_link(None, ti_key=key("other_dag", "run_stage", 0)) == ""


def test_only_http_source_urls_are_links(app, db_url):
    """A stored `javascript:` URL (a catalog or manifest of old, before entries were checked) must not become a
    link that runs in the page."""
    from lectern.state.models import Video

    with session_scope(db_url) as session:
        session.get(Video, "v0").url = "javascript:alert(document.cookie)"
    page = app.get("/videos/v0").text
    assert "href='javascript" not in page and "source <code>javascript:alert(document.cookie)</code>" in page
    assert "href='http://x/v1.mp4'" in app.get("/videos/v1").text


def test_files_are_streamed_not_read_whole(app, tmp_path, monkeypatch):
    """A source.mp4 may be gigabytes: the route streams it in chunks instead of reading it into memory."""
    import os

    from lectern.store import LocalStore

    data = os.urandom(5 << 20)
    LocalStore(tmp_path / "store").put_bytes(artifact_key("download", "source", "v0"), data)

    def whole(self, key):
        raise AssertionError(f"{key} read whole")

    monkeypatch.setattr(LocalStore, "get_bytes", whole)
    with app.stream("GET", "/videos/v0/files/source.mp4") as response:
        chunks = list(response.iter_raw())
    assert response.headers["content-type"] == "video/mp4" and b"".join(chunks) == data
