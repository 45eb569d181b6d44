"""The data-only types that stages, the runner and the state layer share: a stage's facts (StageSpec), its result
(StageResult) and the video it runs on (VideoRecord). Importing this imports no stage.

A stage is a folder of lectern/stages: ``spec.py`` states its facts (``SPEC``, a StageSpec), ``run.py`` does its
work with one call shape, ``run(video, store, settings) -> StageResult``, and its helpers live beside them.
lectern.pipeline derives the pipeline from the specs and imports a stage's run.py only where the stage runs.

A stage reads its inputs from the store by key (``video.artifact(stage, name)``, each one of its spec's needs),
writes its outputs there, and returns what it wrote (its spec's products), its metrics and, when it rejects the
video, why. It raises a ``lectern.errors.StageError`` for failures. It never touches the state DB or Airflow:
the runner does that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from lectern.store import Keys


@dataclass(frozen=True)
class RunSetting:
    """A setting one run of the stage's phase DAG may choose: a field of its trigger form that sets the Settings
    field `setting` (through its LECTERN_* variable) for that run's stage processes and pods."""
    param: str
    setting: str
    title: str
    description: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class StageSpec:
    """A stage's facts, stated once: its name, its code version (raise it when its results change), the Settings
    fields its results depend on (with the version, they make the version recorded on every result), the
    artifacts it reads from earlier stages and those it records, whether it wants a GPU, how often Airflow retries
    a transient failure, its own Airflow pool (None: lectern_gpu for a GPU stage, else the default pool), how long
    one video may take before its task is stopped (LECTERN_PHASE_TIMEOUTS overrides it) and the settings one run
    may choose."""
    name: str
    version: str
    settings: tuple[str, ...]
    needs: tuple[tuple[str, str], ...] = ()  # (stage, artifact)
    produces: Mapping[str, str] = field(default_factory=dict)  # artifact -> its file in the video's folder
    gpu: bool = False
    retries: int = 2
    pool: str | None = None
    timeout_s: int = 3600  # per video: a task of N videos gets N times this
    run_settings: tuple[RunSetting, ...] = ()

    def key(self, video_id: str, artifact: str, **parts: str) -> str:
        """The store key of one of the artifacts the stage records, by the one rule for every artifact: its file
        (`produces`, with `parts` filled in: a cover's extension) in the video's folder."""
        if artifact not in self.produces:
            raise ValueError(f"{self.name} records no artifact {artifact!r}; it records {', '.join(self.produces)}")
        return Keys.video(video_id, self.produces[artifact].format(**parts))


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


@dataclass(frozen=True)
class VideoRecord:
    """What a stage knows about its video: identity, metadata and where it was found."""

    id: str
    url: str
    title: str
    description: str
    duration_s: float | None
    height: int | None = None  # the picture's, in pixels, from the metadata (None: unknown)
    language: str | None = None
    live_status: str | None = None
    license: str | None = None
    subjects: tuple[str, ...] = ()
    points: tuple[str, ...] = ()
    queries: tuple[str, ...] = ()  # the searches that found it
    labels: tuple[str, ...] = ()  # its labels in the URL manifests that listed it
    vocabulary: tuple[str, ...] = ()  # the words of the points that found it (their YAML `vocabulary`)
    cover_url: str | None = None
    metadata_relevance: float | None = None  # best over the points that found it; None: not scored
    metadata_llm_score: float | None = None
    # Whether those scores may reject it: found by a search, or listed by hand in a subject with `prefilter: true`.
    metadata_judged: bool = True
    # The local folders (or globs) its file may be read from, when it is a local file (lectern/local_files.py).
    local_roots: tuple[str, ...] = ()
    artifacts: dict[str, dict[str, str]] = field(default_factory=dict)  # stage -> name -> key

    def artifact(self, stage: str, name: str) -> str | None:
        """The store key of an artifact an earlier stage recorded (a need in the stage's spec), or None."""
        return self.artifacts.get(stage, {}).get(name)
