"""Keyframe benchmark: the naive exact method vs the fast path, on a generated 720p H.264 lecture video with known
slide changes (sensor noise, cross-fades, bullets revealed one by one; I-frames every 2 s as on the web).

    .venv/bin/python bench/keyframes.py [--minutes 5] [--naive-seconds 60]

- naive: decord decodes every frame at full resolution, grid SSIM on full-size grayscale (Algorithm 1 on every
  frame, done naively). Run on the first --naive-seconds of the video: it is slow.
- exact: every frame decoded (PyAV) and compared at 320 px, the stage's SSIM: the per-frame method the fast path
  must agree with. Run on the clip and on the whole video.
- fast: PyAV decodes only the I-frames, swscale reduces them to 320 px grayscale (lectern.frames, the stage's
  defaults). Run on the clip and on the whole video.

Prints x realtime, the speed ratio fast/naive on the same clip, keyframe agreement fast/exact, and recall and
precision against the true change times. Imports are warmed up first (a stage process pays them once). Videos are
cached under .lectern/bench.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import CACHE, machine
THRESHOLD, GRID, WIDTH = 0.95, (8, 12), 320  # the stage's defaults


WORDS = ("Enzymes Kinetics Membranes Transport Signalling Metabolism Glycolysis Respiration Photosynthesis Genetics "
         "Replication Transcription Translation Mutation Evolution Ecology Homeostasis Immunity Neurons Hormones").split()


def lecture_scenes(minutes: float):
    """Slides of 10-20 s; every third one fades in, every fourth reveals three bullets one at a time."""
    from lectern.demo.synthetic import Scene, bullet_reveal

    scenes, n = [], 0
    while sum(s.seconds for s in scenes) < minutes * 60:
        n += 1
        word = WORDS[n % len(WORDS)]
        if n % 4 == 0:
            scenes += bullet_reveal(f"{word}: part {n}", [f"{word} point {i} of lecture {n}" for i in range(1, 4)], 6.0)
        else:
            scenes.append(Scene(f"{n}. {word}", (f"What {word.lower()} means", f"Example {n}"),
                                seconds=10.0 + 5 * (n % 3), fade_s=1.0 if n % 3 == 0 else 0.0))
    return scenes


def video(minutes: float) -> tuple[str, dict]:
    from lectern.demo.synthetic import write_video

    name = f"lecture-{minutes:g}min"
    path, truth_file = CACHE / f"{name}.mp4", CACHE / f"{name}.json"
    if not truth_file.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"generating {path.name} ...", flush=True)
        truth_file.write_text(json.dumps(write_video(path, lecture_scenes(minutes), fps=25, noise=4.0, gop_s=2.0)))
    return str(path), json.loads(truth_file.read_text())


def clip_of(path: str, truth: dict, seconds: float) -> tuple[str, dict]:
    """The first `seconds` of a video (stream copy: it starts on an I-frame), with its share of the truth."""
    import subprocess

    clip = path.replace(".mp4", f"-first{seconds:g}s.mp4")
    if not Path(clip).is_file():
        subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", path, "-t", str(seconds), "-c", "copy", clip],
                       check=True)
    return clip, {"duration": seconds, "changes": [c for c in truth["changes"] if c < seconds]}


def fast(path: str) -> tuple[list[float], float]:
    from lectern import frames

    started = time.perf_counter()
    mode = frames.choose_sampling(path, 4.0)
    found = [k.time for k in frames.select_keyframes(frames.sample_frames(path, mode, 1.0, WIDTH), THRESHOLD, GRID)]
    return found, time.perf_counter() - started


def naive(path: str) -> tuple[list[float], float]:
    from lectern import frames

    started = time.perf_counter()
    found = [t for t, _ in frames.naive_keyframes(path, THRESHOLD, GRID)]
    return found, time.perf_counter() - started


def exact(path: str) -> tuple[list[float], float]:
    from lectern import frames

    started = time.perf_counter()
    found = [k.time for k in frames.select_keyframes(frames.sample_frames(path, "interval", 0.0, WIDTH), THRESHOLD, GRID)]
    return found, time.perf_counter() - started


def measure(minutes: float = 5.0, naive_seconds: float = 60.0) -> dict:
    """Every method's rows, the fast/naive speed ratio and fast/exact agreement."""
    from lectern.demo.synthetic import match_changes

    long_path, long_truth = video(minutes)
    clip_path, clip_truth = clip_of(long_path, long_truth, naive_seconds)
    fast(clip_path)  # warm-up: imports and first-use costs, paid once per stage process
    fast_long, fast_long_s = fast(long_path)
    fast_clip, fast_clip_s = fast(clip_path)
    exact_clip, exact_clip_s = exact(clip_path)
    exact_long, exact_long_s = exact(long_path)
    naive_clip, naive_clip_s = naive(clip_path)
    gop = 2.0 + 0.1
    rows = []
    for method, name, truth, found, seconds, tolerance in (
        ("naive exact (every frame, full size)", "clip", clip_truth, naive_clip, naive_clip_s, 1.1),
        ("exact (every frame, 320 px)", "clip", clip_truth, exact_clip, exact_clip_s, 1.1),
        ("exact (every frame, 320 px)", f"{minutes:g} min", long_truth, exact_long, exact_long_s, 1.1),
        ("fast path (I-frames, 320 px)", "clip", clip_truth, fast_clip, fast_clip_s, gop),
        ("fast path (I-frames, 320 px)", f"{minutes:g} min", long_truth, fast_long, fast_long_s, gop),
    ):
        score = match_changes(found[1:], truth["changes"], tolerance)
        rows.append({"method": method, "video": name, "video_s": truth["duration"], "wall_s": seconds,
                     "realtime": truth["duration"] / seconds, "keyframes": len(found), **score})
    agree = match_changes(fast_long, exact_long, gop)  # a fast keyframe at most one GOP after an exact one
    return {"rows": rows, "fast_vs_naive": naive_clip_s / fast_clip_s, "agreement": agree, "minutes": minutes}


def table(result: dict) -> list[str]:
    lines = ["| method | video | seconds of video | wall s | x realtime | keyframes | recall | precision |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in result["rows"]:
        lines.append(f"| {r['method']} | {r['video']} | {r['video_s']:.0f} | {r['wall_s']:.2f} | {r['realtime']:.1f} "
                     f"| {r['keyframes']} | {r['recall']:.3f} | {r['precision']:.3f} |")
    agree = result["agreement"]
    lines += ["", f"fast path vs naive on the same clip: {result['fast_vs_naive']:.0f}x faster",
              f"fast path vs exact keyframes ({result['minutes']:g} min): {agree['recall']:.3f} of exact keyframes "
              f"found, {agree['precision']:.3f} of fast keyframes matched (within one GOP)"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the video for the fast path")
    parser.add_argument("--naive-seconds", type=float, default=60.0, help="length of the clip both methods run on")
    args = parser.parse_args()
    result = measure(args.minutes, args.naive_seconds)
    print(f"\nkeyframes benchmark on {machine()} (threshold {THRESHOLD}, grid {GRID[0]}x{GRID[1]})\n")
    print("\n".join(table(result)))


if __name__ == "__main__":
    main()
