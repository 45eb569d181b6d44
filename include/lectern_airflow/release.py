"""The assemble DAG's last task: a release of every assembled video's samples, when there is news."""

from __future__ import annotations

from airflow.sdk import Asset, TriggerRule, task

from lectern.config import Settings


@task(trigger_rule=TriggerRule.ALL_DONE, outlets=[Asset(name="lectern_release", uri="lectern://releases/latest")])
def write_release(assembled: dict, **context) -> dict:
    """Gather every assembled video's samples into release shards with a manifest (when there is news, or a
    release name was asked for)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from lectern.release import build_release

    params = context["params"]
    if not assembled["counts"].get("succeeded") and not params.get("release"):
        raise AirflowSkipException("no video was assembled in this run: no new release")
    manifest = build_release(Settings.from_env(), name=params.get("release") or None,
                             subject=params.get("subject") or None)
    print(f"release {manifest['release']} at {manifest['location']}: {manifest['stats']}", flush=True)
    return {"release": manifest["release"], "location": manifest["location"], "stats": manifest["stats"]}
