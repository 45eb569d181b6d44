"""The per-video phase DAG's task group: claim a batch of ready videos, run one mapped task per video
(lectern_airflow.execution), publish the phase's Asset with how each video ended. Task ids stay what the UI and
log paths have always shown: claim_videos, run_stage, publish."""

from __future__ import annotations

from airflow.sdk import TriggerRule, task

from lectern.config import Settings
from lectern_airflow.assets import ASSETS
from lectern_airflow.execution import lease_owner


@task(task_id="claim_videos")
def claim_batch(stage: str, **context) -> list[list[str]]:
    """Lease a batch of videos ready for this phase, grouped into what each mapped task runs."""
    from lectern.phase_tasks import claim, task_groups

    params = context["params"]
    settings = Settings.from_env()
    claimed = claim(settings, stage, lease_owner(context), subject=params.get("subject") or None,
                    video_ids=params.get("video_ids") or None, batch_size=params.get("batch_size"),
                    force=bool(params.get("force")), stale_only=bool(params.get("stale_only")))
    return task_groups(settings, stage, claimed)


@task(trigger_rule=TriggerRule.ALL_DONE)
def summarize(stage: str, groups: list[list[str]]) -> dict:
    """How every claimed video ended this phase (succeeded / rejected / failed, and why)."""
    from lectern.phase_tasks import outcome

    return outcome(Settings.from_env(), stage, [video_id for group in groups for video_id in group])


def publish(stage: str, groups, ran):
    """Summarise the run and update the phase's Asset, which schedules the next phase."""
    summary = summarize.override(task_id="publish", outlets=[ASSETS[stage]])(stage, groups)
    ran >> summary
    return summary
