"""
### Lectern: Judge

Relevance of each video to the knowledge points that found it (sentence embeddings over title,
description and transcript); videos below the threshold are rejected with their score. GPU pod in Kubernetes mode.

Claims a batch of ready videos, runs one mapped task per video (labelled with its video id; its log is that
video's log for this phase), then publishes the `lectern_judge` Asset that schedules the next phase.
"""

from airflow.sdk import dag

from lectern_airflow import claim_batch, dag_args, phase_params, phase_schedule, publish, run_videos


@dag(schedule=phase_schedule("judge"), params=phase_params(), doc_md=__doc__, **dag_args("judge"))
def lectern_judge():
    claimed = claim_batch("judge")
    publish("judge", claimed, run_videos("judge", claimed))


lectern_judge()
