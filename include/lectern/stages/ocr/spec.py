"""The ocr stage's facts: what the rest of Lectern knows about it (lectern.pipeline reads them)."""

from lectern.stage_types import StageSpec

SPEC = StageSpec(
    name="ocr",
    version="4",  # 4: tesseract reads the keyframes' grey copies
    settings=("ocr_lang", "ocr_engine", "ocr_vlm_model", "ocr_vlm_prompt", "ocr_min_confidence", "ocr_min_chars",
              "ocr_repeat_similarity"),
    needs=(("keyframes", "clips"),),
    produces={"ocr": "ocr.json"},
)
