"""OCR benchmark: seconds per 720p keyframe, one tesseract process (one core) and one per core.

    .venv/bin/python bench/ocr.py [--keyframes 24]

Keyframes are rendered lecture slides stored as JPEG, as the keyframes stage stores them; the OCR stage runs on
them end to end (read from a local store, tesseract, filters, ocr.json). Prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import platform
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keyframes", type=int, default=24)
    args = parser.parse_args()
    from PIL import Image

    from lectern.config import Settings
    from lectern.demo.synthetic import Scene, render
    from lectern.stages import ocr
    from lectern.state.ops import VideoRecord
    from lectern.store import Keys, LocalStore

    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(Path(tmp) / "store")
        frames = []
        for n in range(args.keyframes):
            buffer = io.BytesIO()
            scene = Scene(f"Lecture {n}: enzyme kinetics", (f"The rate rises with substrate {n}",
                                                           "Then it saturates at Vmax", f"Km is {n} millimolar"))
            Image.fromarray(render(scene)).save(buffer, format="JPEG", quality=90)
            frames.append({"key": store.put_bytes(Keys.keyframe("bench", n, n + 1, 1), buffer.getvalue()), "time": n})
        store.put_json(Keys.clips("bench"), {"clips": [{"keyframes": frames}]})
        video = VideoRecord(id="bench", url="", title="bench", description="", duration_s=None,
                            artifacts={"keyframes": {"clips": Keys.clips("bench")}})
        base = Settings.from_env({**os.environ, "LECTERN_HOME": tmp})
        cores = os.cpu_count() or 1
        print(f"\nOCR benchmark ({platform.processor() or platform.machine()}, {cores} cores; "
              f"{args.keyframes} keyframes of 1280x720)\n")
        print("| tesseract processes | wall s | s per keyframe | s per keyframe per core | characters |")
        print("| --- | --- | --- | --- | --- |")
        for workers in sorted({1, cores}):
            settings = dataclasses.replace(base, ocr_workers=workers)
            started = time.perf_counter()
            result = ocr.run(video, store, settings)
            wall = time.perf_counter() - started
            per = wall / args.keyframes
            print(f"| {workers} | {wall:.2f} | {per:.3f} | {per * workers:.3f} | {result.metrics['characters']} |")


if __name__ == "__main__":
    main()
