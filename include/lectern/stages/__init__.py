"""One module per stage, one call shape: ``run(video, store, settings) -> StageResult``.

A stage reads its inputs from the store by key, writes its outputs there, and returns what it wrote, its
metrics and, when it rejects the video, why. It raises a ``lectern.errors.StageError`` for failures.
It never touches the state DB or Airflow: the runner does that.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lectern.config import STAGES, Settings
from lectern.state.ops import VideoRecord
from lectern.store import Store


@dataclass
class StageResult:
    status: str  # "succeeded" | "rejected"
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> store key
    metrics: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    video_updates: dict[str, Any] = field(default_factory=dict)  # facts learned about the video (duration, ...)

    @classmethod
    def succeeded(cls, artifacts: dict[str, str], metrics: dict[str, Any], **updates: Any) -> "StageResult":
        return cls("succeeded", artifacts, metrics, None, updates)

    @classmethod
    def rejected(cls, reason: str, metrics: dict[str, Any], artifacts: dict[str, str] | None = None,
                 **updates: Any) -> "StageResult":
        return cls("rejected", artifacts or {}, metrics, reason, updates)


def without_timings(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics for an artifact: wall-clock timings left out (they stay in the state row), so a rerun writes the
    same bytes."""
    return {name: value for name, value in metrics.items()
            if not (name.endswith("seconds") or name == "realtime_factor")}


class Stage(Protocol):
    NAME: str
    VERSION: str
    CONFIG: tuple[str, ...]  # the settings its results depend on

    def run(self, video: VideoRecord, store: Store, settings: Settings) -> StageResult: ...


def stage_config(name: str, settings: Settings) -> dict[str, Any]:
    """The settings a stage's results depend on (model ids included), as JSON values."""
    return {field: _jsonable(getattr(settings, field)) for field in get_stage(name).CONFIG}


def stage_version(name: str, settings: Settings) -> str:
    """The stage's code version and a hash of its settings, e.g. ``2-3f9a1c0b7d2e``: recorded on every result, so
    a run with `stale_only` finds the results that current settings would compute differently."""
    config = json.dumps(stage_config(name, settings), sort_keys=True)
    return f"{get_stage(name).VERSION}-{hashlib.sha256(config.encode()).hexdigest()[:12]}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def get_stage(name: str) -> Stage:
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; stages are {', '.join(STAGES)}")
    return importlib.import_module(f"lectern.stages.{name}")  # type: ignore[return-value]
