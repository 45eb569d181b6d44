"""One video as people look it up: its state per stage (why it stopped, which Airflow task ran it, the link to
that task's log) and its artifacts. `python -m lectern status VIDEO_ID` prints the log links; the Airflow plugin
(plugins/lectern_plugin.py) serves the same report as pages under /lectern/ and links each mapped task to it."""

from __future__ import annotations

import html
from urllib.parse import quote

from sqlalchemy import select

from lectern.config import Settings
from lectern.stages.download.urls import is_web_url
from lectern.state.db import session_scope
from lectern.state.models import Video, VideoStage
from lectern.state.reports import furthest_rows, stage_rows, video_record, why

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; font-size: 0.9rem; }
.succeeded { color: #176317; } .rejected { color: #8a5a00; } .failed { color: #b00020; } .forgotten { color: #777; }
.meta { color: #666; font-size: 0.85rem; } img { max-height: 8rem; border: 1px solid #ddd; margin: 0.2rem; }
code { background: #f3f3f3; padding: 0 0.2rem; }
"""


def task_log_url(airflow_url: str, stage: str, run_id: str, map_index: int) -> str:
    """The Airflow UI page of the mapped task that ran this stage for the video (its log tab)."""
    return f"{airflow_url}/dags/lectern_{stage}/runs/{quote(run_id, safe='')}/tasks/run_stage/mapped/{map_index}"


def task_log_path(stage: str, run_id: str, map_index: int) -> str:
    """Where Airflow's default log_filename_template puts that task's log files, under its log folder."""
    return (f"<airflow logs>/dag_id=lectern_{stage}/run_id={run_id}/task_id=run_stage/map_index={map_index}"
            "/attempt=*.log")


def video_report(settings: Settings, video_id: str) -> dict:
    """Everything the state DB knows of one video; KeyError when it does not."""
    with session_scope(settings.db_url) as session:
        record = video_record(session, video_id)
        video = session.get(Video, video_id)
        stages = []
        for row in stage_rows(session, video_ids=[video_id]):
            logged = row.run_id is not None and row.map_index is not None
            stages.append({
                "stage": row.stage, "status": row.status, "attempts": row.attempts, "why": why(row),
                "version": row.version, "seconds": row.seconds, "run_id": row.run_id, "map_index": row.map_index,
                "log_url": task_log_url(settings.airflow_url, row.stage, row.run_id, row.map_index) if logged else None,
                "artifacts": dict(row.artifacts or {}),
            })
        return {
            "id": record.id, "url": record.url, "title": record.title, "duration_s": record.duration_s,
            "language": record.language, "subjects": list(record.subjects), "points": list(record.points),
            "metadata_relevance": record.metadata_relevance, "forgotten": video.forgotten_reason, "stages": stages,
        }


def videos_of_task(settings: Settings, stage: str, run_id: str, map_index: int) -> list[str]:
    """The videos one mapped task (or pod) of a phase run worked on, from the run id and map index rows record."""
    with session_scope(settings.db_url) as session:
        return list(session.scalars(select(VideoStage.video_id).where(
            VideoStage.stage == stage, VideoStage.run_id == run_id, VideoStage.map_index == map_index
        ).order_by(VideoStage.video_id)))


def video_index(settings: Settings, subject: str | None = None, video_ids: list[str] | None = None) -> list[dict]:
    """Every video (of a subject, or among `video_ids`) with the furthest stage it reached and how it ended."""
    with session_scope(settings.db_url) as session:
        return [{"id": video_id, "stage": row.stage, "status": row.status, "why": why(row)}
                for video_id, row in sorted(furthest_rows(session, subject, video_ids).items())]


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _source_link(url: str) -> str:
    """A link to the video's source, for http(s) URLs only: a stored `javascript:` URL would run in the page."""
    if is_web_url(url):
        return f"<a href='{_e(url)}' rel='noopener noreferrer'>source</a>"
    return f"source <code>{_e(url)}</code>"


def render_video_page(report: dict, base: str = "/lectern", keyframes: list[str] = ()) -> str:
    """The report as one page; artifact links and keyframes go through `base`/videos/{id}/files/{name}."""
    vid = report["id"]
    files = f"{base}/videos/{quote(vid, safe='')}/files/"
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Lectern: {_e(vid)}</title>"
             f"<style>{STYLE}</style></head><body><p class='meta'><a href='{base}/videos'>All videos</a></p>",
             f"<h1>{_e(report['title'] or vid)}</h1>",
             f"<p class='meta'>id <code>{_e(vid)}</code> · {_source_link(report['url'])} · "
             f"{_e(report['duration_s'])} s · language {_e(report['language'])} · subjects "
             f"{_e(', '.join(report['subjects']))} · points {_e(', '.join(report['points']))} · title/description "
             f"relevance {_e(report['metadata_relevance'])}</p>"]
    if report["forgotten"]:
        parts.append(f"<p class='forgotten'>Taken down: {_e(report['forgotten'])}</p>")
    parts.append("<table><tr><th>stage</th><th>status</th><th>attempts</th><th>why</th><th>version</th>"
                 "<th>seconds</th><th>Airflow task</th><th>artifacts</th></tr>")
    for stage in report["stages"]:
        task = (f"<a href='{_e(stage['log_url'])}'>{_e(stage['run_id'])} [{_e(stage['map_index'])}]</a>"
                if stage["log_url"] else "")
        links = " ".join(f"<a href='{files}{_e(quote(key.split(f'videos/{vid}/', 1)[-1]))}'>{_e(name)}</a>"
                         for name, key in sorted(stage["artifacts"].items()))
        seconds = f"{stage['seconds']:.1f}" if stage["seconds"] is not None else ""
        parts.append(f"<tr class='stage'><td>{_e(stage['stage'])}</td><td class='{_e(stage['status'])}'>"
                     f"{_e(stage['status'])}</td><td>{_e(stage['attempts'])}</td><td>{_e(stage['why'])}</td>"
                     f"<td>{_e(stage['version'])}</td><td>{seconds}</td><td>{task}</td><td>{links}</td></tr>")
    parts.append("</table>")
    parts.append("<p class='meta'>Rerun one phase for this video: trigger <code>lectern_&lt;phase&gt;</code> with "
                 f"<em>Video ids</em> = <code>{_e(vid)}</code> and <em>Force</em> on.</p>")
    if keyframes:
        parts.append("<h2>Keyframes</h2><div>" + "".join(
            f"<img src='{files}{_e(quote(name))}' alt='{_e(name)}' loading='lazy'>" for name in keyframes) + "</div>")
    parts.append("</body></html>")
    return "".join(parts)


def render_video_index(videos: list[dict], base: str = "/lectern") -> str:
    rows = "".join(f"<tr><td><a href='{base}/videos/{quote(v['id'], safe='')}'>{_e(v['id'])}</a></td>"
                   f"<td>{_e(v['stage'])}</td><td class='{_e(v['status'])}'>{_e(v['status'])}</td>"
                   f"<td>{_e(v['why'])}</td></tr>"
                   for v in videos)
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Lectern videos</title>"
            f"<style>{STYLE}</style></head><body><h1>Lectern videos</h1><p class='meta'>{len(videos)} videos, each at "
            f"the furthest stage it reached</p><table><tr><th>video</th><th>stage</th><th>status</th><th>why</th></tr>"
            f"{rows}</table></body></html>")
