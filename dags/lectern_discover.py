"""
### Lectern: Discover

Subject -> knowledge points (the subject's taxonomy YAML) -> one `ytsearchN:` search (or the point's explicit
URLs) per knowledge point -> video rows, deduplicated by video id, each linked to every point that found it
-> every new result scored on its metadata (title + description relevance to its point, and the optional LLM
metadata judge) for the pre-download filter. New videos become pending for download. Knowledge points already
searched are skipped unless *force* is set, so re-running a subject only searches what is new.
"""

from airflow.sdk import dag

from lectern_airflow import (
    dag_args,
    discover_params,
    plan_discovery,
    plan_scoring,
    publish_discovery,
    run_in_worker,
    score_results,
)


@dag(schedule=None, params=discover_params(), doc_md=__doc__, **dag_args("discover"))
def lectern_discover():
    searches = run_in_worker.override(task_id="search_point").expand_kwargs(plan_discovery())
    scores = score_results(plan_scoring())
    searches >> scores >> publish_discovery()


lectern_discover()
