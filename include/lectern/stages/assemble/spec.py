"""The assemble stage's facts: what the rest of Lectern knows about it (lectern.pipeline reads them)."""

from lectern.stage_types import StageSpec

SPEC = StageSpec(
    name="assemble",
    # 3: fields in their published meaning (text_num, keyframe_ssim, extracted_frames, video meta keys); 4: the
    # loader's image token neutralised in text; 5: one metadata schema at every sample position
    version="5",
    settings=("tokenizer", "embedding_model", "image_tokens", "sample_token_budget", "sample_max_images"),
    needs=(("download", "source"), ("download", "probe"), ("transcribe", "asr"), ("judge", "judge"),
           ("keyframes", "clips"), ("ocr", "ocr")),
    produces={"samples": "samples.jsonl", "clip_level": "clips_textbook.json", "video_meta": "video_meta_data.json"},
    timeout_s=900,
)
