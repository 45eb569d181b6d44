"""
### Lectern: Download

Metadata pre-filter (duration bounds) -> yt-dlp download, H.264 <= 720p preferred -> ffprobe -> store.

A video that is gone (404/410, private) fails permanently; network trouble is retried with backoff.
Rejections say which filter and the measured value.

Claims a batch of ready videos, runs one mapped task per video (labelled with its video id; its log is that
video's log for this phase), then publishes the `lectern_download` Asset that schedules the next phase.
"""

from airflow.sdk import dag

from lectern_airflow import claim_batch, dag_args, phase_params, phase_schedule, publish, run_videos


@dag(schedule=phase_schedule("download"), params=phase_params(), doc_md=__doc__, **dag_args("download"))
def lectern_download():
    claimed = claim_batch("download")
    publish("download", claimed, run_videos("download", claimed))


lectern_download()
