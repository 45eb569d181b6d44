"""Releases made when their user asks: the assemble DAG's last task, when a run names a release, and the backfill's
last, when a subject's backlog is drained. Never a side effect of each batch."""

from __future__ import annotations

from airflow.sdk import Asset, TriggerRule, task

from lectern.config import Settings

RELEASE_ASSET = Asset(name="lectern_release", uri="lectern://releases/latest")


@task(trigger_rule=TriggerRule.ALL_DONE, outlets=[RELEASE_ASSET])
def write_release(assembled: dict, **context) -> dict:
    """A release of every assembled video's samples (the run's subject's, or all), when the run names one."""
    from airflow.sdk.exceptions import AirflowSkipException

    from lectern.recipes import DEFAULT_RECIPE
    from lectern.release import build_for

    params = context["params"]
    if not params.get("release"):
        raise AirflowSkipException("no release asked for: name one in the run's form, or let a backfill release "
                                   "the subject when its backlog is drained")
    return _summary(build_for(DEFAULT_RECIPE, Settings.from_env(), name=params["release"],
                              subject=params.get("subject") or None))


@task(outlets=[RELEASE_ASSET])
def release_drained(report: dict, **context) -> dict:
    """The backfill's release: the subject's, by its recipe, once its backlog is drained (a stuck round fails
    before this, and a round that continues skips it)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from lectern.release import release_subject

    if report["next"] != "done":
        raise AirflowSkipException("the backlog is not drained: the next round releases")
    params = context["params"]
    manifest = release_subject(Settings.from_env(), params["subject"], params.get("release") or None)
    if manifest is None:
        raise AirflowSkipException(f"{params['subject']}'s recipe releases nothing")
    return _summary(manifest)


def _summary(manifest: dict) -> dict:
    print(f"release {manifest['release']} at {manifest['location']}: {manifest['stats']}", flush=True)
    return {"release": manifest["release"], "location": manifest["location"], "stats": manifest["stats"]}
