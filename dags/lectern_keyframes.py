"""
### Lectern: Keyframes

ASR segments merged into clips; SSIM keyframes (Algorithm 1: compare each sampled frame with the last
kept keyframe) -> JPEGs named `{vid}@{start}_{end}#{n}.jpg` and `clips.json`.

Claims a batch of ready videos, runs one mapped task per video (labelled with its video id; its log is that
video's log for this phase), then publishes the `lectern_keyframes` Asset that schedules the next phase.
"""

from airflow.sdk import dag

from lectern_airflow import claim_batch, dag_args, phase_params, phase_schedule, publish, run_videos


@dag(schedule=phase_schedule("keyframes"), params=phase_params("keyframes"), doc_md=__doc__, **dag_args("keyframes"))
def lectern_keyframes():
    claimed = claim_batch("keyframes")
    publish("keyframes", claimed, run_videos("keyframes", claimed))


lectern_keyframes()
