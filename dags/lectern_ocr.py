"""
### Lectern: OCR

Tesseract OCR of every keyframe -> `videos/{id}/ocr.json`.

Claims a batch of ready videos, runs one mapped task per video (labelled with its video id; its log is that
video's log for this phase), then publishes the `lectern_ocr` Asset that schedules the next phase.
"""

from airflow.sdk import dag

from lectern_airflow import claim_batch, dag_args, phase_params, phase_schedule, publish, run_videos


@dag(schedule=phase_schedule("ocr"), params=phase_params(), doc_md=__doc__, **dag_args("ocr"))
def lectern_ocr():
    claimed = claim_batch("ocr")
    publish("ocr", claimed, run_videos("ocr", claimed))


lectern_ocr()
