"""What each phase DAG's claim and publish tasks do, as plain functions (the DAGs only call these)."""

from __future__ import annotations

import logging
from typing import Sequence

from lectern.config import Settings
from lectern.discovery import import_manifest, load_subject, subject_file
from lectern.pipeline import GPU_POOL, GPU_STAGES, pool_for, run_variables, stage_version, videos_per_task
from lectern.recipes import STAGES
from lectern.stages.download.prefilter import awaited_scores
from lectern.state.catalog import points_to_search, sync_subject
from lectern.state.db import session_scope
from lectern.state.reports import funnel, stage_rows, why
from lectern.state.transitions import claim_videos, release_expired_leases, reset_for_rerun, reset_stale

log = logging.getLogger("lectern")


def prepare_discovery(settings: Settings, subject: str, force: bool = False) -> list[tuple[int, str]]:
    """Load a subject's taxonomy into the state DB; returns (id, path) of the knowledge points to search. A
    URL-manifest subject's rows are recorded here (every run: new rows are added, known ones left as they are),
    so it has nothing to search."""
    definition = load_subject(subject_file(settings, subject), settings.allow_file_urls)
    with session_scope(settings.db_url) as session:
        ids = sync_subject(session, definition.name, definition.points, definition.recipe, definition.prefilter)
    if definition.manifest is not None:
        import_manifest(settings, definition.name, definition.manifest,
                        {p.name: i for p, i in zip(definition.points, ids)})
        return []
    with session_scope(settings.db_url) as session:
        todo = points_to_search(session, definition.name, force=force)
    log.info("subject %s: %d knowledge points, %d to search", definition.name, len(definition.points), len(todo))
    return todo


def claim(settings: Settings, stage: str, owner: str, subject: str | None = None,
          video_ids: Sequence[str] | None = None, batch_size: int | None = None, force: bool = False,
          stale_only: bool = False) -> list[str]:
    """Lease a batch of videos ready for `stage` to `owner` (a DAG run). With `stale_only`, results computed with
    another stage version or other settings than the current ones are made ready again first."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    with session_scope(settings.db_url) as session:
        expired = release_expired_leases(session, settings.max_attempts, stage)
        if expired:
            log.warning("%s: leases expired for %s; they are claimable again", stage, ", ".join(expired))
        if force:
            reset_for_rerun(session, stage, video_ids=video_ids, subject=subject)
        if stale_only:
            stale = reset_stale(session, stage, stage_version(stage, settings), video_ids=video_ids, subject=subject)
            log.info("%s: %d results are stale (other version or settings than %s)", stage, len(stale),
                     stage_version(stage, settings))
        ids = claim_videos(session, stage, owner, batch_size or settings.batch_size, settings.lease_seconds,
                           settings.max_attempts, subject=subject, video_ids=video_ids,
                           await_scores=awaited_scores(settings))
    scope = (f" of subject {subject}" if subject else "") + (f" among {', '.join(video_ids)}" if video_ids else "")
    log.info("%s: claimed %d videos%s%s", stage, len(ids), scope, " (force)" if force else "")
    return ids


def trigger_environment(stage: str, params: dict) -> dict[str, str]:
    """The LECTERN_* variables a run's params set for its stage processes (params left empty set nothing)."""
    return {variable: str(params[param]) for param, variable in run_variables(stage).items()
            if params.get(param) not in (None, "")}


def task_groups(settings: Settings, stage: str, video_ids: Sequence[str]) -> list[list[str]]:
    """Split claimed videos into what each mapped task (or pod) runs: for the GPU phases LECTERN_VIDEOS_PER_TASK
    videos, so one model load serves several; for the CPU phases LECTERN_CPU_VIDEOS_PER_TASK (default one, so each
    video is its own task with its own log)."""
    size = videos_per_task(stage, settings)
    return [list(video_ids[i:i + size]) for i in range(0, len(video_ids), size)]


def outcome(settings: Settings, stage: str, video_ids: Sequence[str]) -> dict:
    """How each claimed video ended this stage: counts by status and one line per video."""
    with session_scope(settings.db_url) as session:
        rows = stage_rows(session, video_ids=video_ids, stage=stage)
        lines = {}
        for row in rows:
            reason = why(row)
            lines[row.video_id] = f"{row.status}" + (f" ({reason})" if reason else "")
        counts: dict[str, int] = {}
        for row in rows:
            counts[row.status] = counts.get(row.status, 0) + 1
    for video_id, line in lines.items():
        log.info("[%s] %s: %s", video_id, stage, line)
    return {"stage": stage, "counts": counts, "videos": lines}


def discovery_outcome(settings: Settings, subject: str) -> dict:
    """Videos known for a subject and how many wait for download."""
    with session_scope(settings.db_url) as session:
        counts = funnel(session, subject)
    download = counts.get(STAGES[0], {})
    videos = sum(download.values())
    log.info("subject %s: %d videos known, %d pending download", subject, videos, download.get("pending", 0))
    return {"subject": subject, "videos": videos, "download": download}


def pool_definitions(settings: Settings) -> dict[str, dict]:
    """Lectern's pools in the format of `airflow pools import FILE`. Stage pods are deferred while they run (the
    triggerer watches them, no worker slot is held), so deferred tasks count against the pools: a GPU slot stays
    taken while its pod runs."""
    return {
        GPU_POOL: {"slots": settings.gpu_pool_slots, "description": f"Lectern GPU phases ({', '.join(GPU_STAGES)})",
                   "include_deferred": True},
        pool_for("download"): {"slots": settings.download_pool_slots, "description": "Lectern downloads",
                               "include_deferred": True},
    }
