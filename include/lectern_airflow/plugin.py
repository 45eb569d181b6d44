"""The Lectern Airflow plugin's parts (plugins/lectern_plugin.py registers them): pages under /lectern/ on the
api-server showing each video's state and artifacts, and an extra link from every per-video task to its page.

The pages are read-only and behind Airflow's own login: every route needs an authenticated user (a session of the
UI or a bearer token, as Airflow's own API) whom the auth manager lets read every Lectern phase DAG, since a
video's page shows every phase of it: 401 without a user, 403 without that access."""

from __future__ import annotations

import mimetypes
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

from lectern.config import Settings
from lectern.recipes import STAGES

URL_PREFIX = "/lectern"


class LecternVideoLink(BaseOperatorLink):
    """From a per-video task (run_stage of a phase DAG) to the page of the video(s) it ran."""

    name = "Lectern video"

    def get_link(self, operator, *, ti_key) -> str:
        stage = ti_key.dag_id.removeprefix("lectern_")
        if stage not in STAGES or ti_key.task_id != "run_stage" or ti_key.map_index < 0:
            return ""
        return task_page_url(ti_key.dag_id, ti_key.run_id, ti_key.map_index)


def task_page_url(dag_id: str, run_id: str, map_index: int) -> str:
    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback="") or ""
    return f"{base.rstrip('/')}{URL_PREFIX}/tasks/{dag_id}/{quote(run_id, safe='')}/{map_index}"


def phase_dags() -> list[str]:
    return [f"lectern_{stage}" for stage in STAGES]


def may_read_phases(user) -> None:
    """Whether Airflow's auth manager lets `user` read every phase DAG, as Airflow's own DAG views ask it (the
    DAG's team included); HTTPException 403 naming those it may not."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.configuration import conf
    from airflow.models.dag import DagModel
    from fastapi import HTTPException

    manager = get_auth_manager()
    # DAGs belong to teams only in multi-team mode: elsewhere no query per DAG on every request (a video page's
    # keyframes are a request each)
    teams = conf.getboolean("core", "multi_team", fallback=False)
    refused = [dag_id for dag_id in phase_dags() if not manager.is_authorized_dag(
        method="GET", details=DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id) if teams else None),
        user=user)]
    if refused:
        raise HTTPException(403, f"{user.get_name()} may not read {', '.join(refused)}: Lectern's pages show a "
                                 "video's every phase")


def create_app():
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

    from lectern.store import Keys, store_from_settings
    from lectern.video_page import render_video_index, render_video_page, video_index, video_report, videos_of_task

    def authorized(user=Depends(get_user)) -> None:  # 401 from get_user without a session or token
        may_read_phases(user)

    app = FastAPI(title="Lectern", description="Lectern's per-video state and artifacts",
                  dependencies=[Depends(authorized)])

    def report_or_404(settings: Settings, video_id: str) -> dict:
        try:
            return video_report(settings, video_id)
        except KeyError:
            raise HTTPException(404, f"no video {video_id!r} in Lectern's state DB") from None

    @app.get("/videos", response_class=HTMLResponse)
    def videos(subject: str | None = None) -> str:
        return render_video_index(video_index(Settings.from_env(), subject), URL_PREFIX)

    @app.get("/videos/{video_id}.json")
    def video_json(video_id: str) -> dict:
        return report_or_404(Settings.from_env(), video_id)

    @app.get("/videos/{video_id}", response_class=HTMLResponse)
    def video(video_id: str) -> str:
        settings = Settings.from_env()
        report = report_or_404(settings, video_id)
        keyframes = [] if report["forgotten"] else sorted(
            key.split(f"videos/{video_id}/", 1)[1]
            for key in store_from_settings(settings).list(Keys.video(video_id, "keyframes/")))
        return render_video_page(report, URL_PREFIX, keyframes[:48])

    @app.get("/videos/{video_id}/files/{name:path}")
    def video_file(video_id: str, name: str) -> Response:
        settings = Settings.from_env()
        if report_or_404(settings, video_id)["forgotten"] or ".." in name.split("/"):
            raise HTTPException(404, "no such file")
        store = store_from_settings(settings)
        key = Keys.video(video_id, name)
        if not store.exists(key):
            raise HTTPException(404, f"no artifact {name!r} for {video_id}")
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        # streamed: a source.mp4 may be gigabytes, never read into memory whole
        return StreamingResponse(store.iter_bytes(key), media_type=media_type)

    @app.get("/tasks/{dag_id}/{run_id}/{map_index}", response_class=HTMLResponse)
    def task(dag_id: str, run_id: str, map_index: int):
        stage = dag_id.removeprefix("lectern_")
        if stage not in STAGES:
            raise HTTPException(404, f"{dag_id} is not a per-video phase DAG")
        ids = videos_of_task(Settings.from_env(), stage, run_id, map_index)
        if not ids:
            raise HTTPException(404, f"no video records {dag_id} run {run_id} map index {map_index} (it may have "
                                     "been run again since)")
        if len(ids) == 1:
            return RedirectResponse(f"{URL_PREFIX}/videos/{quote(ids[0], safe='')}", status_code=307)
        return render_video_index(video_index(Settings.from_env(), video_ids=ids), URL_PREFIX)

    return app
