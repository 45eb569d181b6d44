"""What a subject's videos go through (its YAML's `recipe`), by stage name: the multimodal textbook, or
InternVid-style video-text pairs (clips at scene changes, captioned and scored). Each recipe names its stages in
order (its last one's results are what it releases) and the release it builds (lectern.release.BUILDERS).

This module knows stages by name only, so the state layer can order them without importing any; lectern.pipeline
reads each named stage's spec (lectern/stages/<name>/spec.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    stages: tuple[str, ...]
    release: str | None  # what it releases: a key of lectern.release.BUILDERS (None: results stay in the store)

    @property
    def last(self) -> str:
        """The stage whose results are the recipe's output."""
        return self.stages[-1]


RECIPES: dict[str, Recipe] = {
    "textbook": Recipe(("download", "transcribe", "judge", "keyframes", "ocr", "assemble"), release="textbook"),
    "pairs": Recipe(("download", "keyframes", "caption"), release="pairs"),
}
DEFAULT_RECIPE = "textbook"  # a subject's when its YAML names none
# Every stage once, in recipe order (a stage in several recipes where it first appears): the order stages are
# listed, counted and run in.
STAGES: tuple[str, ...] = tuple(dict.fromkeys(stage for recipe in RECIPES.values() for stage in recipe.stages))
PHASES = ("discover",) + STAGES  # discover is a phase of its own, not a per-video stage


def stages_after(stage: str, recipe: str = DEFAULT_RECIPE) -> tuple[str, ...]:
    """The stages after `stage` in `recipe`, in order (none for a stage the recipe does not have)."""
    stages = RECIPES[recipe].stages
    return stages[stages.index(stage) + 1:] if stage in stages else ()


def next_stage(stage: str, recipe: str = DEFAULT_RECIPE) -> str | None:
    """The stage after `stage` in `recipe` (None after its last, or for a stage the recipe does not have)."""
    return next(iter(stages_after(stage, recipe)), None)


def upstream_phases(phase: str) -> tuple[str, ...]:
    """The phases whose results a phase takes up, over every recipe that has it (its DAG is scheduled on any of
    their Assets): keyframes follows judge in a textbook and download in pairs."""
    if phase == "discover" or all(recipe.stages[0] == phase for recipe in RECIPES.values() if phase in recipe.stages):
        return ("discover",)
    before = {r.stages[r.stages.index(phase) - 1] for r in RECIPES.values() if phase in r.stages[1:]}
    return tuple(name for name in PHASES if name in before)
