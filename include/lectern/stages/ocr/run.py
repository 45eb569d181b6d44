"""The ocr stage's work: run(video, store, settings) -> StageResult (what it does: its package's docstring)."""

from __future__ import annotations

import os
import re
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path
from unittest.mock import patch

from lectern.config import Settings
from lectern.errors import CorruptMedia, MissingInput
from lectern.pipeline import artifact_key
from lectern.stage_types import StageResult, VideoRecord
from lectern.stages.judge import llm
from lectern.store import Store
from lectern.vlm import describe_images

# Keyframes per tesseract run: their grey copies (0.9 MB each at 720p) are on disk only for their run.
IMAGES_PER_RUN = 64


def read_images(paths: list[str], lang: str, min_confidence: float) -> list[tuple[str, float | None]]:
    """For each image: the text of its confident words, line by line, and their mean confidence. One tesseract
    process reads IMAGES_PER_RUN images at a time from a list file, loading its model once (a process per image
    spends ~0.2 s of each keyframe starting up; see bench/ocr.py), given their grey copies (grey_copies)."""
    import pytesseract

    found = []
    for start in range(0, len(paths), IMAGES_PER_RUN):
        run = paths[start:start + IMAGES_PER_RUN]
        with tempfile.TemporaryDirectory(prefix="lectern-ocr-") as directory:
            listing = Path(directory) / "images.txt"
            listing.write_text("".join(f"{copy}\n" for copy in grey_copies(run, directory)))
            data = pytesseract.image_to_data(str(listing), lang=lang, output_type=pytesseract.Output.DICT)
        found += confident_lines(data, len(run), min_confidence)
    return found


BULLET = re.compile(r"^[\s•·▪●◦■□►▶‣⁃∙*-]+")  # a bullet RapidOCR reads into its line (tesseract's is a lone glyph)


@lru_cache(maxsize=1)
def _rapidocr():
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def read_images_rapidocr(paths: list[str], min_confidence: float) -> list[tuple[str, float | None]]:
    """For each image: RapidOCR's lines (PP-OCRv4 detection, then recognition of each line; top to bottom) at
    least `min_confidence` (0-100) sure, and their mean confidence."""
    engine = _rapidocr()
    found = []
    for path in paths:
        try:
            lines, _ = engine(path)
        except Exception as exc:  # an unreadable file: OpenCV hands back None, which RapidOCR trips over
            raise CorruptMedia(f"keyframe {Path(path).name} is not a readable image: {exc}") from exc
        kept = [(BULLET.sub("", text), 100 * float(score)) for _, text, score in lines or []
                if 100 * float(score) >= min_confidence]
        found.append(("\n".join(text for text, _ in kept),
                      round(sum(score for _, score in kept) / len(kept), 1) if kept else None))
    return found


def grey_copies(paths: list[str], directory: str) -> list[str]:
    """Each image's luma as a PGM file in `directory`. Given a colour image, tesseract thresholds each channel
    (Otsu) to find the text, then recognises it from a grey copy anyway; given the grey image it reads the same
    text in about three quarters of the time (bench/ocr.py). Text that differs from its background in hue alone,
    not in brightness, is lost: rare on slides. A JPEG decodes its luma alone (draft mode): ~3 ms a keyframe."""
    from PIL import Image

    copies = []
    for n, path in enumerate(paths):
        copies.append(str(Path(directory) / f"{n}.pgm"))
        try:
            with Image.open(path) as image:
                image.draft("L", image.size)
                image.convert("L").save(copies[-1])
        except OSError as exc:  # PIL's UnidentifiedImageError and truncated files alike
            raise CorruptMedia(f"keyframe {Path(path).name} is not a readable image: {exc}") from exc
    return copies


def confident_lines(data: dict, images: int, min_confidence: float) -> list[tuple[str, float | None]]:
    """tesseract's words of each image (its TSV output, `images` pages) -> (confident words line by line, their
    mean confidence)."""
    lines: list[dict[tuple[int, int, int], list[str]]] = [{} for _ in range(images)]
    confidences: list[list[float]] = [[] for _ in range(images)]
    for word, confidence, page, *where in zip(data["text"], data["conf"], data["page_num"], data["block_num"],
                                              data["par_num"], data["line_num"]):
        confidence, word = float(confidence), word.strip()
        if len(word) == 1 and not (word.isdigit() or word in "aAI"):
            continue  # a lone glyph: a bullet read as "e" or "o", a stray mark
        if word and confidence >= min_confidence:
            lines[page - 1].setdefault(tuple(where), []).append(word)
            confidences[page - 1].append(confidence)
    return [("\n".join(" ".join(words) for words in found.values()),
             round(sum(scores) / len(scores), 1) if scores else None)
            for found, scores in zip(lines, confidences)]


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
    """The lines of `text` that the previous keyframe's text did not have (compared by their words: "·Sugar" is
    "· Sugar")."""
    seen = {_line_words(line) for line in previous.splitlines()}
    return "\n".join(line for line in text.splitlines() if _line_words(line) not in seen)


def _line_words(line: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[^\W_]+", line.lower()))


def run(video: VideoRecord, store: Store, settings: Settings) -> StageResult:
    clips_key = video.artifact("keyframes", "clips")
    if not clips_key:
        raise MissingInput(f"{video.id}: no keyframes")
    keys = [frame["key"] for clip in store.get_json(clips_key)["clips"] for frame in clip["keyframes"]]
    started = time.monotonic()

    with ExitStack() as stack:
        paths = [str(stack.enter_context(store.local_path(key))) for key in keys]
        if settings.ocr_engine == "vlm":
            answers = describe_images(paths, settings.ocr_vlm_model, settings.ocr_vlm_prompt,
                                      llm.Serving.from_settings(settings))
            raw = {key: (text, None) for key, text in zip(keys, answers)}
        elif settings.ocr_engine == "rapidocr":  # ONNX Runtime uses every core itself
            raw = dict(zip(keys, read_images_rapidocr(paths, settings.ocr_min_confidence)))
        else:
            # one tesseract process per worker, each over every n-th keyframe (neighbours cost alike)
            workers = max(1, min(settings.ocr_workers or os.cpu_count() or 1, len(keys)))
            # Tesseract's OpenMP threads fight each other on small machines: one thread per process, a process per
            # core. Set for the tesseract processes alone: left in this process's environment, it was inherited by
            # every later stage, and CTranslate2 (Whisper) limited so decodes garbage.
            with patch.dict(os.environ, {"OMP_THREAD_LIMIT": "1"}), ThreadPoolExecutor(max_workers=workers) as pool:
                shares = list(pool.map(lambda n: read_images(paths[n::workers], settings.ocr_lang,
                                                             settings.ocr_min_confidence), range(workers)))
            raw = {key: shares[i % workers][i // workers] for i, key in enumerate(keys)}
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
    key = store.put_json(artifact_key("ocr", "ocr", video.id), {
        "video_id": video.id, "engine": settings.ocr_engine,
        **({"model": settings.ocr_vlm_model} if settings.ocr_engine == "vlm" else
           {"min_confidence": settings.ocr_min_confidence} if settings.ocr_engine == "rapidocr" else
           {"lang": settings.ocr_lang, "min_confidence": settings.ocr_min_confidence}),
        "texts": texts, "details": details})
    metrics = {"keyframes": len(texts), "with_text": sum(1 for t in texts.values() if t),
               "dropped": sum(1 for d in details.values() if "dropped" in d),
               "characters": sum(len(t) for t in texts.values()), "seconds": round(seconds, 3),
               "seconds_per_keyframe": round(seconds / len(texts), 3) if texts else None}
    return StageResult.succeeded({"ocr": key}, metrics)
