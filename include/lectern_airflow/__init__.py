"""Airflow wiring shared by the DAG files (the only package besides dags/ and plugins/ that imports Airflow). Only
wiring lives here; what each task does is a call into ``lectern`` (include/lectern). Heavy libraries are imported
inside task bodies, so parsing a DAG file touches no database, store or network.

- assets: parse-time settings, DAG defaults, one Asset per phase, the phase schedules
- params: the trigger forms
- execution: a stage in the worker or in a pod, one mapped task per video
- phase: claim -> run per video -> publish, the per-video phase DAG's task group
- discover, release, backfill: the tasks of those DAGs
- plugin: the per-video pages and the Lectern video extra link
- connections: the store's S3 client from an Airflow connection (LECTERN_S3_CONN_ID), registered on import
"""

import lectern_airflow.connections  # noqa: F401  (registers the store's connection clients)
from lectern_airflow.assets import ASSETS, DEFAULT_ARGS, SETTINGS, START, TAGS, dag_args, phase_schedule
from lectern_airflow.backfill import (
    BACKFILL_DAG_ID,
    continue_backfill,
    next_round,
    review_backfill_round,
    start_round,
    trigger_phase,
)
from lectern_airflow.discover import plan_discovery, plan_scoring, publish_discovery, score_results
from lectern_airflow.execution import pod_call, run_in_worker, run_videos
from lectern_airflow.params import backfill_params, discover_params, phase_params, release_params
from lectern_airflow.phase_group import claim_batch, publish
from lectern_airflow.release import release_drained, write_release

__all__ = ["ASSETS", "BACKFILL_DAG_ID", "DEFAULT_ARGS", "SETTINGS", "START", "TAGS",
           "backfill_params", "claim_batch", "continue_backfill", "dag_args", "discover_params", "next_round",
           "phase_params", "phase_schedule", "plan_discovery", "plan_scoring", "pod_call", "publish",
           "publish_discovery", "release_drained", "release_params", "review_backfill_round", "run_in_worker",
           "run_videos", "score_results", "start_round", "trigger_phase", "write_release"]
