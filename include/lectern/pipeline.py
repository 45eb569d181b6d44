"""The pipeline, derived from the stages' specs (lectern/stages/<name>/spec.py) and the recipes (lectern.recipes):
each stage's pool and Airflow retries, the settings a run may choose, and the version recorded on its results.
Nothing else lists stages: adding one is its folder, its line in a recipe, its DAG file and its tests (README,
"Adding a stage"). A stage's code (its run.py) is imported only by stage_module, where the stage runs."""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import fields
from pathlib import Path
from types import ModuleType
from typing import Any

from lectern.config import Settings
from lectern.recipes import PHASES, STAGES
from lectern.stage_types import StageSpec

SPECS: dict[str, StageSpec] = {name: importlib.import_module(f"lectern.stages.{name}.spec").SPEC for name in STAGES}
GPU_STAGES = tuple(name for name, spec in SPECS.items() if spec.gpu)
GPU_POOL = "lectern_gpu"


def stage_spec(name: str) -> StageSpec:
    if name not in SPECS:
        raise ValueError(f"unknown stage {name!r}; stages are {', '.join(STAGES)}")
    return SPECS[name]


def stage_module(name: str) -> ModuleType:
    """The stage's code (lectern/stages/<name>/run.py): its ``run(video, store, settings)``."""
    stage_spec(name)
    return importlib.import_module(f"lectern.stages.{name}.run")


def pool_for(stage: str) -> str:
    """The Airflow pool a stage's tasks take a slot of: concurrency bounded per resource."""
    declared = stage_spec(stage)
    return declared.pool or (GPU_POOL if declared.gpu else "default_pool")


def videos_per_task(stage: str, settings: Settings) -> int:
    """How many claimed videos one mapped task (or pod) of `stage` runs: LECTERN_VIDEOS_PER_TASK for GPU stages, so
    one model load serves several; LECTERN_CPU_VIDEOS_PER_TASK (default one: one task, one log per video) else."""
    return settings.videos_per_task if stage in GPU_STAGES else settings.cpu_videos_per_task


def task_timeout_s(work: str, settings: Settings) -> int:
    """How long one task (or pod) of a phase may run: its videos times the time one video may take
    (LECTERN_PHASE_TIMEOUTS, else the stage's own default; an hour for discover's metadata scoring)."""
    unknown = set(settings.phase_timeouts) - set(PHASES)
    if unknown:
        raise ValueError(f"LECTERN_PHASE_TIMEOUTS names no such phase: {', '.join(sorted(unknown))}")
    if work not in STAGES:
        return settings.phase_timeouts.get("discover", 3600)
    return settings.phase_timeouts.get(work, stage_spec(work).timeout_s) * videos_per_task(work, settings)


def run_variables(stage: str) -> dict[str, str]:
    """Trigger-form field -> the LECTERN_* variable it sets for the run's stage processes (and pods)."""
    variable = {f.name: f.metadata["variable"] for f in fields(Settings)}
    return {run.param: variable[run.setting] for run in stage_spec(stage).run_settings}


def stage_config(name: str, settings: Settings) -> dict[str, Any]:
    """The settings a stage's results depend on (model ids included), as JSON values."""
    return {field: _jsonable(getattr(settings, field)) for field in stage_spec(name).settings}


def stage_version(name: str, settings: Settings) -> str:
    """The stage's code version and a hash of its settings, e.g. ``2-3f9a1c0b7d2e``: recorded on every result, so
    a run with `stale_only` finds the results that current settings would compute differently."""
    config = json.dumps(stage_config(name, settings), sort_keys=True)
    return f"{stage_spec(name).version}-{hashlib.sha256(config.encode()).hexdigest()[:12]}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def artifact_key(stage: str, artifact: str, video_id: str, **parts: str) -> str:
    """Where `stage` records `artifact` for a video (its spec's `produces`, one key rule for all): for code that
    knows a stage's artifact by name, not from the video's recorded artifacts."""
    return stage_spec(stage).key(video_id, artifact, **parts)
