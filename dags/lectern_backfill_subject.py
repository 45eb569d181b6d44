"""
### Lectern: backfill a subject

Drives every phase for one subject until its backlog is drained: discover (new knowledge points only), then
download, transcribe, judge, keyframes, OCR and assemble, each as a run of that phase's own DAG (so every
video's log stays in its phase's mapped task, labelled with its video id). Each phase claims only videos ready
for it, so finished work is never redone.

A round that leaves videos ready or in flight, having finished something, continues as a new run of this DAG
(*Round* + 1). A round that finished nothing, or the last of *Most rounds*, fails the `review_round` task with
what is stuck: the videos still ready or in flight per phase. Videos that failed for good are listed there too,
each with its error class; they are finished, not stuck. A round that drains the backlog writes the subject's
release (*Release name*, or a UTC timestamp).
"""

from airflow.sdk import chain, dag

from lectern.recipes import STAGES
from lectern_airflow import (
    BACKFILL_DAG_ID,
    START,
    TAGS,
    backfill_params,
    continue_backfill,
    next_round,
    release_drained,
    review_backfill_round,
    start_round,
    trigger_phase,
)


@dag(dag_id=BACKFILL_DAG_ID, schedule=None, start_date=START, catchup=False, max_active_runs=1,
     params=backfill_params(), doc_md=__doc__, tags=TAGS + ["backfill"])
def lectern_backfill_subject():
    plan = start_round()
    phases = [trigger_phase(phase, plan[phase]) for phase in ("discover", *STAGES)]
    review = review_backfill_round(plan["finished_before"])
    chain(plan, *phases, review)
    release_drained(review)
    next_round(continue_backfill(review))


lectern_backfill_subject()
