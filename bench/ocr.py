"""OCR benchmark: seconds per 720p keyframe, one tesseract process per keyframe (the stage at first) vs one process
per core over a list of the colour keyframes (the stage after bench/ocr.py's profile) vs over a list of their grey
copies (the stage now), with one core and with every core; then the engines (tesseract, RapidOCR) on every
recorded-lecture layout whose slides' text is known: word recall and seconds per keyframe.

    .venv/bin/python bench/ocr.py [--keyframes 24] [--engines-only]

Keyframes are rendered lecture slides stored as JPEG, as the keyframes stage stores them; the OCR stage runs on
them end to end (read from a local store, the engine, filters, ocr.json). In the engine table, the keyframes are
those the keyframes stage's selection keeps on each layout (lectern_dev.layouts, I-frames every second), each
scored against the text of the slide on screen at its time (word recall: the slide's words found in the raw
reading, counted with multiplicity); "clean slides" are the lecture's slides rendered without a layout. Prints
the tables.
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


def slide_words(state: str) -> list[str]:
    """A slide state's words, from its id (lectern_dev.layouts: "title|line/line")."""
    import re

    title, _, lines = state.partition("|")
    return re.findall(r"[^\W_]+", f"{title} {' '.join(lines.split('/'))}".lower())


def word_recall(expected: list[str], text: str) -> float:
    import re
    from collections import Counter

    found = Counter(re.findall(r"[^\W_]+", text.lower()))
    return sum(min(n, found[w]) for w, n in Counter(expected).items()) / len(expected)


def layout_keyframes(name: str, folder: Path) -> list[tuple[object, list[str]]]:
    """The keyframes the selection keeps on a layout (RGB), each with the words of the slide on screen then."""
    from lectern.stages.keyframes import decoding, selection
    from lectern_dev.layouts import write_layout
    from lectern_dev.synthetic import SIZE, Scene, render

    if name == "clean slides":
        from lectern_dev.layouts import LECTURE

        return [(render(scene, SIZE), slide_words(f"{scene.title}|{'/'.join(scene.lines)}"))
                for scene in LECTURE if isinstance(scene, Scene)]
    path = folder / f"{name}.mp4"
    truth = write_layout(path, name, fps=10, gop_s=1.0)
    found = selection.select_keyframes(decoding.sample_frames(str(path), "iframes", 1.0, 320, 0.95, (8, 12)),
                                       0.95, (8, 12))
    kept = []
    for keyframe in found:
        state = next((s for s in truth["states"] if s["start"] <= keyframe.time < s["end"]), truth["states"][-1])
        if state["kind"] == "slide" and "|" in (state["state"] or ""):
            kept.append((keyframe.image, slide_words(state["state"])))
    return kept


OCR_LAYOUTS = ("clean slides", "speaker_inset", "moving_inset", "speaker_strip", "pointer", "embedded_video",
               "talking_head", "transitions", "camera_shake", "camera_drift", "camera_keystone",
               "camera_crossing")  # the layouts whose states are slides of known text (not a board or a scroll)


def engine_rows(engines=("tesseract", "rapidocr")) -> list[dict]:
    """Each engine through the OCR stage on each layout's keyframes: mean word recall and seconds per keyframe."""
    from PIL import Image

    from lectern.config import Settings
    from lectern.pipeline import artifact_key
    from lectern.stage_types import VideoRecord
    from lectern.stages.ocr import run as ocr
    from lectern.store import Keys, LocalStore

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(Path(tmp) / "store")
        base = Settings.from_env({**os.environ, "LECTERN_HOME": tmp})
        for name in OCR_LAYOUTS:
            frames, expected = [], []
            for n, (image, words) in enumerate(layout_keyframes(name, Path(tmp))):
                buffer = io.BytesIO()
                Image.fromarray(image).save(buffer, format="JPEG", quality=90)
                frames.append({"key": store.put_bytes(Keys.keyframe(f"l{len(rows)}", n, n + 1, 1), buffer.getvalue()),
                               "time": n})
                expected.append(words)
            video_id = f"l{len(rows)}"
            store.put_json(artifact_key("keyframes", "clips", video_id), {"clips": [{"keyframes": frames}]})
            video = VideoRecord(id=video_id, url="", title=name, description="", duration_s=None,
                                artifacts={"keyframes": {"clips": artifact_key("keyframes", "clips", video_id)}})
            for engine in engines:
                settings = dataclasses.replace(base, ocr_engine=engine)
                ocr.run(video, store, settings)  # once to load the engine's models
                started = time.perf_counter()
                result = ocr.run(video, store, settings)
                wall = time.perf_counter() - started
                details = store.get_json(result.artifacts["ocr"])["details"]
                recalls = [word_recall(words, details[frame["key"]]["raw"]) for frame, words in zip(frames, expected)]
                rows.append({"layout": name, "engine": engine, "keyframes": len(frames),
                             "word_recall": sum(recalls) / len(recalls), "worst": min(recalls),
                             "per_keyframe_s": wall / len(frames)})
                print(rows[-1], flush=True)
    return rows


def engine_table(rows: list[dict]) -> list[str]:
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    heads = " | ".join(f"{e}: word recall (worst), s per keyframe" for e in engines)
    lines = [f"| layout | keyframes | {heads} |", "|" + " --- |" * (2 + len(engines))]
    for layout in dict.fromkeys(r["layout"] for r in rows):
        of = {r["engine"]: r for r in rows if r["layout"] == layout}
        cells = [f"{of[e]['word_recall']:.3f} ({of[e]['worst']:.2f}), {of[e]['per_keyframe_s']:.3f}" for e in engines]
        lines.append(f"| {layout} | {of[engines[0]]['keyframes']} | " + " | ".join(cells) + " |")
    return lines


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
    parser.add_argument("--engines-only", action="store_true", help="only the engine table")
    args = parser.parse_args()
    if not args.engines_only:
        rows = ocr_rows(args.keyframes)
        print(f"\nOCR benchmark on {machine()}; {args.keyframes} keyframes of 1280x720\n")
        print("\n".join(table(rows)))
    print(f"\nOCR engines on {machine()}: the keyframes stage's keyframes of each layout (1280x720)\n")
    print("\n".join(engine_table(engine_rows())))


if __name__ == "__main__":
    main()
