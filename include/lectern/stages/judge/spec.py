"""The judge stage's facts: what the rest of Lectern knows about it (lectern.pipeline reads them)."""

from lectern.stage_types import StageSpec

SPEC = StageSpec(
    name="judge",
    version="2",
    settings=("embedding_model", "judge_min_relevance", "judge_models", "judge_policy", "judge_min_score",
              "rewrite_model", "rewrite_min_similarity", "rewrite_length_ratio", "llm_max_new_tokens",
              "llm_max_transcript_chars"),
    needs=(("transcribe", "asr"),),
    produces={"judge": "judge.json", "refined_asr": "refined_asr.json"},
    gpu=True,
)
