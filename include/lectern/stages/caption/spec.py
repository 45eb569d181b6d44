"""The caption stage's facts: what the rest of Lectern knows about it (lectern.pipeline reads them)."""

from lectern.stage_types import StageSpec

SPEC = StageSpec(
    name="caption",
    version="1",
    settings=("caption_model", "caption_prompt", "caption_frames", "caption_max_new_tokens", "caption_summary_model",
              "caption_score_model", "aesthetic_head", "caption_min_similarity", "caption_min_aesthetic"),
    needs=(("download", "source"), ("keyframes", "clips")),
    produces={"captions": "captions.json"},
    gpu=True,
)
