"""ocr: pytesseract on every keyframe -> ocr.json (keyframe key -> text)."""

from __future__ import annotations

import os
import time

from lectern.config import Settings
from lectern.errors import MissingInput
from lectern.stages import StageResult
from lectern.state.ops import VideoRecord
from lectern.store import Keys, Store

NAME = "ocr"
VERSION = "1"


def read_text(path: str, lang: str) -> str:
    import pytesseract
    from PIL import Image

    with Image.open(path) as image:
        text = pytesseract.image_to_string(image.convert("RGB"), lang=lang)
    return " ".join(text.split())


def run(video: VideoRecord, store: Store, settings: Settings) -> StageResult:
    clips_key = video.artifacts.get("keyframes", {}).get("clips")
    if not clips_key:
        raise MissingInput(f"{video.id}: no keyframes")
    # Tesseract's OpenMP threads fight each other on small machines: one thread is ~5x faster per image.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    clips = store.get_json(clips_key)
    texts: dict[str, str] = {}
    started = time.monotonic()
    for clip in clips["clips"]:
        for frame in clip["keyframes"]:
            with store.local_path(frame["key"]) as path:
                texts[frame["key"]] = read_text(str(path), settings.ocr_lang)
    seconds = time.monotonic() - started
    key = store.put_json(Keys.ocr(video.id), {"video_id": video.id, "engine": "tesseract", "lang": settings.ocr_lang,
                                              "texts": texts})
    metrics = {"keyframes": len(texts), "with_text": sum(1 for t in texts.values() if t),
               "characters": sum(len(t) for t in texts.values()), "seconds": round(seconds, 3),
               "seconds_per_keyframe": round(seconds / len(texts), 3) if texts else None}
    return StageResult.succeeded({"ocr": key}, metrics)
