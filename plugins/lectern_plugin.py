"""Lectern's Airflow plugin: per-video pages on the api-server (/lectern/videos, a "Lectern videos" entry in
the UI's navigation) and a "Lectern video" extra link on every per-video task. The parts live in
include/lectern_airflow/plugin.py."""

from airflow.plugins_manager import AirflowPlugin

from lectern_airflow.plugin import URL_PREFIX, LecternVideoLink, create_app


class LecternPlugin(AirflowPlugin):
    name = "lectern"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Lectern"}]
    global_operator_extra_links = [LecternVideoLink()]
    external_views = [{"name": "Lectern videos", "href": f"{URL_PREFIX}/videos", "destination": "nav",
                       "url_route": "lectern-videos"}]
