"""The trigger forms: every per-video phase's, the settings a run may choose, discover's, assemble's (with the
release name) and the backfill's."""

from __future__ import annotations

from airflow.sdk import Param

from lectern.pipeline import stage_spec
from lectern_airflow.assets import SETTINGS


def phase_params(phase: str | None = None) -> dict[str, Param]:
    """The trigger form of every per-video phase, and the settings `phase` lets a run choose."""
    return {
        **run_setting_params(phase),
        "subject": Param(None, type=["null", "string"], title="Subject",
                         description="Only videos found for this subject (empty: every ready video)."),
        "video_ids": Param([], type="array", items={"type": "string"}, title="Video ids",
                           description="Only these videos (empty: any ready video)."),
        "batch_size": Param(SETTINGS.batch_size, type="integer", minimum=1, maximum=1000, title="Batch size",
                            description="At most this many videos in this run; a backlog is drained by more runs."),
        "force": Param(False, type="boolean", title="Force",
                       description="Rerun the given videos (or subject) even if this phase already finished them."),
        "stale_only": Param(False, type="boolean", title="Stale only",
                            description="Rerun only results computed with another stage version or other settings "
                                        "(e.g. after changing OCR settings: OCR, then assemble; nothing upstream)."),
    }


def run_setting_params(phase: str | None) -> dict[str, Param]:
    """The settings the phase's spec lets one run choose, each defaulting to its configured value."""
    if phase in (None, "discover"):
        return {}
    return {run.param: Param(getattr(SETTINGS, run.setting), type="string", title=run.title,
                             description=run.description, **({"enum": list(run.choices)} if run.choices else {}))
            for run in stage_spec(phase).run_settings}


def discover_params() -> dict[str, Param]:
    return {
        "subject": Param("Biology", type="string", minLength=1, title="Subject",
                         description="Subject to discover: its taxonomy is <LECTERN_SUBJECTS_DIR>/<subject>.yaml."),
        "force": Param(False, type="boolean", title="Force",
                       description="Search every knowledge point again, not only the new or changed ones."),
    }


def release_params() -> dict[str, Param]:
    return {
        **phase_params(),
        "release": Param(None, type=["null", "string"], pattern="^[A-Za-z0-9_-]{1,64}$", title="Release name",
                         description="Write a release of this name after assembling (empty: none; a backfill "
                                     "releases its subject when its backlog is drained)."),
    }


def backfill_params() -> dict[str, Param]:
    return {
        "subject": Param("Biology", type="string", minLength=1, title="Subject",
                         description="Subject to backfill: discovers its taxonomy's new knowledge points, then runs "
                                     "every phase for its videos until none is left to do."),
        "batch_size": Param(SETTINGS.batch_size, type="integer", minimum=1, maximum=1000, title="Batch size",
                            description="Videos per phase run; a larger backlog takes more rounds."),
        "max_rounds": Param(10, type="integer", minimum=1, maximum=100, title="Most rounds",
                            description="Stop (and report what is left) after this many rounds."),
        "round": Param(1, type="integer", minimum=1, title="Round",
                       description="Which round this run is; the backfill sets it when it continues itself."),
        "release": Param(None, type=["null", "string"], pattern="^[A-Za-z0-9_-]{1,64}$", title="Release name",
                         description="The release written once the backlog is drained (empty: a UTC timestamp)."),
    }
