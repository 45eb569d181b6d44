"""A takedown (``lectern forget VIDEO``) reaches every copy Lectern made of the video: its state rows are marked
forgotten (no phase picks it up again), its artifacts and scratch folders are removed, every release in the store
that holds it is rebuilt without it (lectern.release.rebuild_release: samples, clip-level records, Parquet, video
metadata, stats, viewer), and every export of those releases on this machine is written again, which removes its
images. What cannot be reached from here (an export on another machine, a release that fails to rebuild) is
listed with the command that finishes the job."""

from __future__ import annotations

import shlex
import socket
from pathlib import Path

from lectern.config import Settings
from lectern.export import INTERNVID, export_internvid, export_release, recorded, recorded_exports
from lectern.release import rebuild_release, releases_holding
from lectern.state.db import session_scope
from lectern.state.transitions import forget_video
from lectern.store import Keys, remove_scratch, store_from_settings


def take_down(settings: Settings, video_id: str, reason: str, force: bool = False) -> dict:
    """Forget the video and remove it from everything Lectern wrote; returns what was done and what is left to do
    ({"stages", "artifacts", "releases", "exports", "left"}). KeyError, StillRunning as forget_video raises."""
    with session_scope(settings.db_url) as session:
        stages = forget_video(session, video_id, reason, force=force)
    store = store_from_settings(settings)
    report = {"stages": stages, "artifacts": store.delete_prefix(Keys.video(video_id, "")), "releases": [],
              "exports": [], "left": []}
    remove_scratch(video_id)  # a killed download's folder, on this machine
    here = socket.gethostname()
    for manifest in releases_holding(store, video_id):
        name = manifest["release"]
        try:
            rebuild_release(settings, manifest)
        except Exception as exc:  # noqa: BLE001 - reported with the command that finishes the job
            subject = f" --subject {shlex.quote(manifest['subject'])}" if manifest.get("subject") else ""
            report["left"].append(f"release {name} still holds {video_id} ({type(exc).__name__}: {exc}); rebuild or "
                                  f"remove it: lectern release --name {name}{subject}")
            continue
        report["releases"].append(name)
        for export in recorded_exports(store, name):
            folder, layout = Path(export["folder"]), export["layout"]
            command = f"lectern export {name} {shlex.quote(str(folder))} --layout {layout}"
            if export["host"] != here:
                report["left"].append(f"export {folder} on {export['host']}: run there: {command}")
                continue
            if recorded(folder).get("release") != name:
                continue  # moved, removed, or another release's export since
            try:
                if layout == INTERNVID:
                    export_internvid(store, name, folder)
                else:
                    export_release(store, name, folder, layout=layout, progress=lambda line: None)
            except Exception as exc:  # noqa: BLE001
                report["left"].append(f"export {folder} still holds {video_id} ({type(exc).__name__}: {exc}); "
                                      f"run: {command}")
                continue
            report["exports"].append(str(folder))
    return report

