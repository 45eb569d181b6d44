"""
### Lectern: Caption

Video-text pairs (subjects whose recipe is `pairs`, InternVid-style): each clip of a video (cut at scene changes by
the keyframes phase) gets a coarse caption of its middle frame and fine captions of frames across it, summarised
into one clip caption by a language model, then a caption-frames similarity (CLIP-style) and an aesthetic score;
clips below the score filters are kept out of the pairs, with why. GPU pod in Kubernetes mode.

Claims a batch of ready videos, runs one mapped task per group of videos (labelled with their video ids; one model
load serves them), then publishes the `lectern_caption` Asset.
"""

from airflow.sdk import dag

from lectern_airflow import claim_batch, dag_args, phase_params, phase_schedule, publish, run_videos


@dag(schedule=phase_schedule("caption"), params=phase_params(), doc_md=__doc__, **dag_args("caption"))
def lectern_caption():
    claimed = claim_batch("caption")
    publish("caption", claimed, run_videos("caption", claimed))


lectern_caption()
