"""The transcribe stage's facts: what the rest of Lectern knows about it (lectern.pipeline reads them)."""

from lectern.stage_types import StageSpec

SPEC = StageSpec(
    name="transcribe",
    # 2: English-only models (language checked on the transcript), the vocabulary prompt; 3: the loop guard
    version="3",
    settings=("whisper_model", "asr_compute_type", "asr_language", "vad_onset", "vad_offset", "vad_chunk_s",
              "asr_window_s", "allowed_languages", "asr_min_language_probability", "asr_min_speech_ratio",
              "asr_hallucination_checks", "asr_max_repeated_ngrams", "asr_max_chars_per_second",
              "asr_max_filler_share", "asr_max_compression_ratio", "asr_max_dropped_loops", "asr_max_new_tokens",
              "align_model", "min_duration_s", "asr_vocabulary_prompt", "language_id_model"),
    needs=(("download", "source"), ("download", "probe")),
    produces={"asr": "asr.json"},
    gpu=True,
    timeout_s=7200,
)
