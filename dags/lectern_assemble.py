"""
### Lectern: Assemble

Interleaves each clip's keyframes, OCR and ASR (in time order) into samples in the published Multimodal
Textbook format, concatenated up to the token budget, per video; then, when the run names a release, writes it:
sharded JSONL under `releases/{name}/` with a manifest (videos, stage versions, counts, funnel). A backfill
releases its subject when its backlog is drained.
"""

from airflow.sdk import dag

from lectern_airflow import claim_batch, dag_args, phase_schedule, publish, release_params, run_videos, write_release


@dag(schedule=phase_schedule("assemble"), params=release_params(), doc_md=__doc__, **dag_args("assemble"))
def lectern_assemble():
    claimed = claim_batch("assemble")
    assembled = publish("assemble", claimed, run_videos("assemble", claimed))
    write_release(assembled)


lectern_assemble()
