"""The pipeline, derived from the stages' specs (lectern.stages.*.SPEC): the stages and their order, the recipes,
each stage's next and upstream stage, its pool and Airflow retries, the settings a run may choose, and the version
recorded on its results. Nothing else lists stages: adding one is its module, its line here (and in a recipe),
its DAG file and its tests."""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from pathlib import Path
from types import ModuleType
from typing import Any

from lectern.config import Settings
from lectern.stages import StageSpec, assemble, caption, download, judge, keyframes, ocr, transcribe

MODULES: dict[str, ModuleType] = {module.SPEC.name: module for module in (
    download, transcribe, judge, keyframes, ocr, assemble, caption)}
SPECS: dict[str, StageSpec] = {name: module.SPEC for name, module in MODULES.items()}
STAGES = tuple(SPECS)
PHASES = ("discover",) + STAGES  # discover is a phase of its own, not a per-video stage
GPU_STAGES = tuple(name for name, spec in SPECS.items() if spec.gpu)
# What a subject's videos go through, in order (its YAML's `recipe`): the multimodal textbook, or InternVid-style
# video-text pairs (clips at scene changes, captioned and scored).
RECIPES = {
    "textbook": ("download", "transcribe", "judge", "keyframes", "ocr", "assemble"),
    "pairs": ("download", "keyframes", "caption"),
}
GPU_POOL = "lectern_gpu"


def spec(name: str) -> StageSpec:
    if name not in SPECS:
        raise ValueError(f"unknown stage {name!r}; stages are {', '.join(STAGES)}")
    return SPECS[name]


def stage_module(name: str) -> ModuleType:
    """The stage's module: its ``run(video, store, settings)``."""
    spec(name)
    return MODULES[name]


def stages_after(stage: str, recipe: str = "textbook") -> tuple[str, ...]:
    """The stages after `stage` in `recipe`, in order (none for a stage the recipe does not have)."""
    stages = RECIPES[recipe]
    return stages[stages.index(stage) + 1:] if stage in stages else ()


def next_stage(stage: str, recipe: str = "textbook") -> str | None:
    """The stage after `stage` in `recipe` (None after its last, or for a stage the recipe does not have)."""
    return next(iter(stages_after(stage, recipe)), None)


def upstream_phases(phase: str) -> tuple[str, ...]:
    """The phases whose results a phase takes up, over every recipe that has it (its DAG is scheduled on any of
    their Assets): keyframes follows judge in a textbook and download in pairs."""
    if phase in ("discover", STAGES[0]):
        return ("discover",)
    before = {stages[stages.index(phase) - 1] for stages in RECIPES.values() if phase in stages}
    return tuple(name for name in PHASES if name in before)


def pool_for(stage: str) -> str:
    """The Airflow pool a stage's tasks take a slot of: concurrency bounded per resource."""
    declared = spec(stage)
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
    return settings.phase_timeouts.get(work, spec(work).timeout_s) * videos_per_task(work, settings)


def run_variables(stage: str) -> dict[str, str]:
    """Trigger-form field -> the LECTERN_* variable it sets for the run's stage processes (and pods)."""
    variable = {f.name: f.metadata["variable"] for f in fields(Settings)}
    return {run.param: variable[run.setting] for run in spec(stage).run_settings}


def stage_config(name: str, settings: Settings) -> dict[str, Any]:
    """The settings a stage's results depend on (model ids included), as JSON values."""
    return {field: _jsonable(getattr(settings, field)) for field in spec(name).settings}


def stage_version(name: str, settings: Settings) -> str:
    """The stage's code version and a hash of its settings, e.g. ``2-3f9a1c0b7d2e``: recorded on every result, so
    a run with `stale_only` finds the results that current settings would compute differently."""
    config = json.dumps(stage_config(name, settings), sort_keys=True)
    return f"{spec(name).version}-{hashlib.sha256(config.encode()).hexdigest()[:12]}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
