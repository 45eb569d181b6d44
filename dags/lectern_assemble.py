"""
### Lectern: Assemble

Interleaves each clip's keyframes, OCR and ASR (in time order) into samples in the published Multimodal
Textbook format, concatenated up to the token budget, per video; then writes a release: sharded JSONL under
`releases/{name}/` with a manifest (videos, stage versions, counts, funnel).
"""

from airflow.sdk import dag

from lectern_airflow import claim_batch, dag_args, phase_schedule, publish, release_params, run_videos, write_release


@dag(schedule=phase_schedule("assemble"), params=release_params(), doc_md=__doc__, **dag_args("assemble"))
def lectern_assemble():
    claimed = claim_batch("assemble")
    assembled = publish("assemble", claimed, run_videos("assemble", claimed))
    write_release(assembled)


lectern_assemble()
