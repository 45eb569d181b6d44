"""
### Lectern: Transcribe

WhisperX: VAD, batched faster-whisper, wav2vec2 word alignment (segment times where alignment fails)
-> `videos/{id}/asr.json`. GPU pod in Kubernetes mode.

Claims a batch of ready videos, runs one mapped task per video (labelled with its video id; its log is that
video's log for this phase), then publishes the `lectern_transcribe` Asset that schedules the next phase.
"""

from airflow.sdk import dag

from lectern_airflow import claim_batch, dag_args, phase_params, phase_schedule, publish, run_videos


@dag(schedule=phase_schedule("transcribe"), params=phase_params(), doc_md=__doc__, **dag_args("transcribe"))
def lectern_transcribe():
    claimed = claim_batch("transcribe")
    publish("transcribe", claimed, run_videos("transcribe", claimed))


lectern_transcribe()
