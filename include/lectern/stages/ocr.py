"""ocr: tesseract on every keyframe, in parallel -> ocr.json (keyframe key -> kept text, and why text was dropped).

Each keyframe is read in grayscale with one tesseract thread (OMP_THREAD_LIMIT=1; one process per core, which is
faster on small machines than tesseract's own threads). Words below LECTERN_OCR_MIN_CONFIDENCE are dropped (a
bullet glyph read as "e" at 45, say), as are lone glyphs; then, in time order, a keyframe's text is dropped when it is meaningless
(fewer than LECTERN_OCR_MIN_CHARS letters or digits, or mostly symbols) or repeats the previous kept text
(LECTERN_OCR_REPEAT_SIMILARITY, word-level): a revealed bullet adds its line, not the whole slide again.
With LECTERN_OCR_ENGINE=vlm a vision-language model reads the keyframes instead (batched), with the same filters.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from difflib import SequenceMatcher

from lectern.config import Settings
from lectern.errors import MissingInput
from lectern.stages import StageResult
from lectern.state.ops import VideoRecord
from lectern.store import Keys, Store

NAME = "ocr"
VERSION = "2"
# Settings whose change makes this stage's earlier results stale (lectern.stages.stage_version).
CONFIG = ("ocr_lang", "ocr_engine", "ocr_vlm_model", "ocr_vlm_prompt", "ocr_min_confidence", "ocr_min_chars",
          "ocr_repeat_similarity")


def read_words(path: str, lang: str, min_confidence: float) -> tuple[str, float | None]:
    """Text of the confident words, line by line, and their mean confidence."""
    import pytesseract
    from PIL import Image

    with Image.open(path) as image:
        data = pytesseract.image_to_data(image.convert("L"), lang=lang, output_type=pytesseract.Output.DICT)
    lines: dict[tuple[int, int, int], list[str]] = {}
    confidences = []
    for word, confidence, *where in zip(data["text"], data["conf"], data["block_num"], data["par_num"],
                                        data["line_num"]):
        confidence, word = float(confidence), word.strip()
        if len(word) == 1 and not (word.isdigit() or word in "aAI"):
            continue  # a lone glyph: a bullet read as "e" or "o", a stray mark
        if word and confidence >= min_confidence:
            lines.setdefault(tuple(where), []).append(word)
            confidences.append(confidence)
    text = "\n".join(" ".join(words) for words in lines.values())
    return text, round(sum(confidences) / len(confidences), 1) if confidences else None


def read_with_vlm(paths: list[str], model: str, prompt: str | None, device: str, batch_size: int,
                  max_new_tokens: int = 512) -> list[str]:
    """Text of each image from a vision-language OCR model (no word confidences: the confidence filter does not
    apply). A chat model gets `prompt` with the image through its chat template; an OCR model gets the image alone."""
    import torch
    from PIL import Image

    from lectern import models

    processor, vlm = models.image_to_text(model, models.llm_device(device))
    texts: list[str] = []
    for begin in range(0, len(paths), batch_size):
        images = [Image.open(path).convert("RGB") for path in paths[begin: begin + batch_size]]
        if prompt:
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
            chat = processor.apply_chat_template(messages, add_generation_prompt=True)
            inputs = processor(images=images, text=[chat] * len(images), return_tensors="pt", padding=True)
        else:
            inputs = processor(images=images, return_tensors="pt")
        inputs = inputs.to(vlm.device)
        with torch.inference_mode():
            output = vlm.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        if "input_ids" in inputs and not vlm.config.is_encoder_decoder:
            output = output[:, inputs["input_ids"].shape[1]:]  # a decoder-only model repeats its prompt
        texts += [text.strip() for text in processor.batch_decode(output, skip_special_tokens=True)]
    return texts


def meaningless(text: str, min_chars: int) -> str | None:
    """Why a text is not worth keeping, or None."""
    characters = [c for c in text if not c.isspace()]
    alnum = sum(c.isalnum() for c in characters)
    if alnum < min_chars:
        return f"too short ({alnum} letters or digits)"
    if alnum / len(characters) < 0.6:
        return f"mostly symbols ({alnum / len(characters):.0%} letters or digits)"
    return None


def similarity(a: str, b: str) -> float:
    return SequenceMatcher(None, a.lower().split(), b.lower().split()).ratio()


def novel_lines(text: str, previous: str) -> str:
    """The lines of `text` that the previous keyframe's text did not have."""
    seen = {line.strip().lower() for line in previous.splitlines()}
    return "\n".join(line for line in text.splitlines() if line.strip().lower() not in seen)


def run(video: VideoRecord, store: Store, settings: Settings) -> StageResult:
    clips_key = video.artifacts.get("keyframes", {}).get("clips")
    if not clips_key:
        raise MissingInput(f"{video.id}: no keyframes")
    # Tesseract's OpenMP threads fight each other on small machines: one thread per process, a process per core.
    os.environ["OMP_THREAD_LIMIT"] = "1"
    keys = [frame["key"] for clip in store.get_json(clips_key)["clips"] for frame in clip["keyframes"]]
    started = time.monotonic()

    def read(key: str) -> tuple[str, float | None]:
        with store.local_path(key) as path:
            return read_words(str(path), settings.ocr_lang, settings.ocr_min_confidence)

    if settings.ocr_engine == "vlm":
        with ExitStack() as stack:
            paths = [str(stack.enter_context(store.local_path(key))) for key in keys]
            answers = read_with_vlm(paths, settings.ocr_vlm_model, settings.ocr_vlm_prompt, settings.llm_device,
                                    settings.llm_batch_size)
        raw = {key: (text, None) for key, text in zip(keys, answers)}
    else:
        with ThreadPoolExecutor(max_workers=settings.ocr_workers or os.cpu_count() or 1) as pool:
            raw = dict(zip(keys, pool.map(read, keys)))  # keys are in time order; map keeps it
    seconds = time.monotonic() - started
    texts: dict[str, str] = {}
    details: dict[str, dict] = {}
    previous = ""
    for key in keys:
        text, confidence = raw[key]
        kept, dropped = text, meaningless(text, settings.ocr_min_chars)
        if not dropped and previous:
            repeat = similarity(text, previous)
            if repeat >= settings.ocr_repeat_similarity:
                dropped = f"repeats the previous keyframe (similarity {repeat:.2f})"
            else:
                kept = novel_lines(text, previous) or text
        texts[key] = "" if dropped else " ".join(kept.split())
        details[key] = {"raw": text, "confidence": confidence, **({"dropped": dropped} if dropped else {})}
        if not dropped:
            previous = text
    key = store.put_json(Keys.ocr(video.id), {
        "video_id": video.id, "engine": settings.ocr_engine,
        **({"model": settings.ocr_vlm_model} if settings.ocr_engine == "vlm" else
           {"lang": settings.ocr_lang, "min_confidence": settings.ocr_min_confidence}),
        "texts": texts, "details": details})
    metrics = {"keyframes": len(texts), "with_text": sum(1 for t in texts.values() if t),
               "dropped": sum(1 for d in details.values() if "dropped" in d),
               "characters": sum(len(t) for t in texts.values()), "seconds": round(seconds, 3),
               "seconds_per_keyframe": round(seconds / len(texts), 3) if texts else None}
    return StageResult.succeeded({"ocr": key}, metrics)
