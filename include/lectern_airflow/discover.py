"""The discover DAG's tasks: load the subject's taxonomy and plan one search per knowledge point, then score
every new search result on its metadata (in the worker, or in a pod), then publish the discover Asset."""

from __future__ import annotations

from airflow.sdk import TriggerRule, task

from lectern.config import Settings
from lectern_airflow.assets import ASSETS, DEFAULT_ARGS, SETTINGS
from lectern_airflow.execution import run_in_worker, stage_pods


@task
def plan_discovery(**context) -> list[dict]:
    """Load the subject's taxonomy into the state DB; one search call per knowledge point to search."""
    from lectern.phase_tasks import prepare_discovery

    params = context["params"]
    points = prepare_discovery(Settings.from_env(), params["subject"], force=bool(params.get("force")))
    return [{"label": path, "args": ["discover", "--point-id", str(point_id)]} for point_id, path in points]


@task
def plan_scoring(**context) -> list[dict]:
    """One call that scores the subject's new search results on metadata (one model load for them all)."""
    subject = context["params"]["subject"]
    return [{"label": subject, "args": ["discover", "--score-only", "--subject", subject]}]


def score_results(plan):
    """Metadata scoring loads models: in the worker locally; in Kubernetes mode, in a pod (a GPU pod when an LLM
    judges metadata), its log streamed into the task's."""
    if SETTINGS.execution != "kubernetes":
        return run_in_worker.override(task_id="score_metadata", trigger_rule=TriggerRule.ALL_DONE).expand_kwargs(plan)
    from lectern.pipeline import GPU_POOL
    from lectern.pods import SCORE_METADATA, needs_gpu

    pool = GPU_POOL if needs_gpu(SCORE_METADATA, SETTINGS) else "default_pool"

    def call(item: dict) -> dict:
        return {"arguments": item["args"], "labels": {"app.kubernetes.io/name": "lectern", "lectern/phase": "discover"}}

    return stage_pods(SCORE_METADATA, "score_metadata", pool, DEFAULT_ARGS["retries"],
                      map_index_template="{{ task.arguments[-1] }}", trigger_rule=TriggerRule.ALL_DONE
                      ).expand_kwargs(plan.map(call))


@task(trigger_rule=TriggerRule.ALL_DONE, outlets=[ASSETS["discover"]])
def publish_discovery(**context) -> dict:
    from lectern.phase_tasks import discovery_outcome

    return discovery_outcome(Settings.from_env(), context["params"]["subject"])
