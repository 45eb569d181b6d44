"""OCR benchmark: seconds per 720p keyframe, one tesseract process per keyframe (the stage at first) vs one process
per core over a list of the colour keyframes (the stage after bench/ocr.py's profile) vs over a list of their grey
copies (the stage now), with one core and with every core.

    .venv/bin/python bench/ocr.py [--keyframes 24]

Keyframes are rendered lecture slides stored as JPEG, as the keyframes stage stores them; the OCR stage runs on
them end to end (read from a local store, tesseract, filters, ocr.json). Prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import tempfile
import time
from pathlib import Path
from unittest import mock

from common import machine


def ocr_rows(keyframes: int = 24) -> list[dict]:
    from PIL import Image

    from lectern.config import Settings
    from lectern.pipeline import artifact_key
    from lectern.stage_types import VideoRecord
    from lectern.stages.ocr import run as ocr
    from lectern.store import Keys, LocalStore
    from lectern_dev.synthetic import Scene, render

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(Path(tmp) / "store")
        frames = []
        for n in range(keyframes):
            buffer = io.BytesIO()
            scene = Scene(f"Lecture {n}: enzyme kinetics", (f"The rate rises with substrate {n}",
                                                           "Then it saturates at Vmax", f"Km is {n} millimolar"))
            Image.fromarray(render(scene)).save(buffer, format="JPEG", quality=90)
            frames.append({"key": store.put_bytes(Keys.keyframe("bench", n, n + 1, 1), buffer.getvalue()), "time": n})
        store.put_json(artifact_key("keyframes", "clips", "bench"), {"clips": [{"keyframes": frames}]})
        video = VideoRecord(id="bench", url="", title="bench", description="", duration_s=None,
                            artifacts={"keyframes": {"clips": artifact_key("keyframes", "clips", "bench")}})
        base = Settings.from_env({**os.environ, "LECTERN_HOME": tmp})
        for workers in sorted({1, os.cpu_count() or 1}):
            settings = dataclasses.replace(base, ocr_workers=workers)
            for method, reader, copies in (
                    ("a process per keyframe, colour (first)", one_at_a_time(ocr.read_images), as_they_are),
                    ("a process per core over a list, colour (second)", ocr.read_images, as_they_are),
                    ("a process per core over a list of grey copies (now)", ocr.read_images, ocr.grey_copies)):
                started = time.perf_counter()
                with mock.patch.object(ocr, "read_images", reader), mock.patch.object(ocr, "grey_copies", copies):
                    result = ocr.run(video, store, settings)
                wall = time.perf_counter() - started
                rows.append({"method": method, "cores": workers, "wall_s": wall, "per_keyframe_s": wall / keyframes,
                             "characters": result.metrics["characters"]})
    return rows


def as_they_are(paths: list[str], _directory: str) -> list[str]:
    """The stage's reading before grey copies: tesseract read the colour keyframes."""
    return paths


def one_at_a_time(read_images):
    """The stage's reading at first: each worker started a tesseract process for every keyframe of its share."""
    return lambda paths, lang, min_confidence: [read_images([path], lang, min_confidence)[0] for path in paths]


def table(rows: list[dict]) -> list[str]:
    lines = ["| method | cores | wall s | s per keyframe | characters |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['method']} | {r['cores']} | {r['wall_s']:.2f} | {r['per_keyframe_s']:.3f} | {r['characters']} |"
              for r in rows]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keyframes", type=int, default=24)
    args = parser.parse_args()
    rows = ocr_rows(args.keyframes)
    print(f"\nOCR benchmark on {machine()}; {args.keyframes} keyframes of 1280x720\n")
    print("\n".join(table(rows)))


if __name__ == "__main__":
    main()
