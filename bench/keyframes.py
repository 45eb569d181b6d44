"""Keyframe benchmark: accuracy and speed of the keyframes stage on generated lectures with known slide changes.

    .venv/bin/python bench/keyframes.py [--only accuracy encodes layouts memory] [--minutes 5] [--naive-seconds 60]
                                        [--encode-minutes 3] [--memory-slides 200 2000]

- accuracy (a 720p H.264 lecture, I-frames every 2 s; sensor noise, cross-fades, bullets revealed one by one):
  naive (decord decodes every frame at full resolution, grid SSIM on full-size grayscale), exact (every frame
  decoded, the stage's SSIM at 320 px) and the fast path (I-frames only). x realtime, recall and precision.
- encodes: the keyframes stage (lectern.stages.keyframes.run, the embedded defaults) on the same lecture as real
  encoders write it by default: 720p H.264 from x264 (keyint 250, 10 s at 25 fps, plus its scene cuts) and 1080p
  VP9 WebM from libvpx (a keyframe every 128 frames, 4.3 s at 30 fps). Each is timed against a full decode of
  the same file in the same run (`ffmpeg -i FILE -f null -`, all cores), and against the stage decoding every
  frame (LECTERN_KEYFRAME_SAMPLING=interval) for the recall it must keep. The lecture changes state every 10 s
  on average (about the rate of the paper's corpus: 6.5M keyframes in 22,000 hours is one per 12 s); scan
  sampling reads only the GOPs in which something changes, so sparser changes run faster.
- layouts (lectern_dev.layouts, 25 fps): recall and precision on each recorded-lecture layout, through the fast
  path (I-frames every second) and through scan (x264's default GOP).
- memory: the stage's peak RSS (its own process) on videos of N distinct slides, 2 s each: it must not grow
  with the number of keyframes.

Videos are cached under .lectern/bench; imports are warmed up before timing (a stage process pays them once).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import CACHE, WORDS, encode, machine, run_measured, video

THRESHOLD, GRID, WIDTH = 0.95, (8, 12), 320  # the stage's defaults
SECTIONS = ("accuracy", "encodes", "layouts", "memory")

def clip_of(path: str, truth: dict, seconds: float) -> tuple[str, dict]:
    """The first `seconds` of a video (stream copy: it starts on an I-frame), with its share of the truth."""
    clip = path.replace(".mp4", f"-first{seconds:g}s.mp4")
    if not Path(clip).is_file():
        subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", path, "-t", str(seconds), "-c", "copy", clip],
                       check=True)
    return clip, {"duration": seconds, "changes": [c for c in truth["changes"] if c < seconds]}


def timed_select(path: str, mode: str, interval_s: float = 1.0) -> tuple[list[float], float]:
    from lectern.stages.keyframes import decoding, selection

    started = time.perf_counter()
    samples = decoding.sample_frames(path, mode, interval_s, WIDTH, THRESHOLD, GRID)
    found = [k.time for k in selection.select_keyframes(samples, THRESHOLD, GRID)]
    return found, time.perf_counter() - started


def naive(path: str) -> tuple[list[float], float]:
    from lectern_dev.baselines import naive_keyframes

    started = time.perf_counter()
    found = [t for t, _ in naive_keyframes(path, THRESHOLD, GRID)]
    return found, time.perf_counter() - started


# --- accuracy ------------------------------------------------------------------------------------------------------

def measure(minutes: float = 5.0, naive_seconds: float = 60.0) -> dict:
    """Every method's rows, the fast/naive speed ratio and fast/exact agreement."""
    from lectern_dev.synthetic import match_changes

    long_path, long_truth = video(minutes)
    clip_path, clip_truth = clip_of(long_path, long_truth, naive_seconds)
    timed_select(clip_path, "iframes")  # warm-up: imports and first-use costs, paid once per stage process
    fast_long, fast_long_s = timed_select(long_path, "iframes")
    fast_clip, fast_clip_s = timed_select(clip_path, "iframes")
    exact_clip, exact_clip_s = timed_select(clip_path, "interval", 0.0)
    exact_long, exact_long_s = timed_select(long_path, "interval", 0.0)
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


# --- the stage on real encodes -------------------------------------------------------------------------------------

ENCODES = (
    ("720p H.264 (x264 defaults: keyint 250, 10 s)", "libx264", (1280, 720), 25, 4.0, 100.0),
    ("1080p VP9 WebM (libvpx defaults: 128 frames, 4.3 s)", "libvpx-vp9", (1920, 1080), 30, 0.0, 40.0),
)


def run_stage(path: str, sampling: str = "auto") -> tuple[float, dict, list[float]]:
    """lectern.stages.keyframes.run on a video file (a local store, the embedded defaults, clips every 10 s):
    its wall seconds, metrics and keyframe times."""
    from lectern.config import Settings
    from lectern.pipeline import artifact_key
    from lectern.stage_types import VideoRecord
    from lectern.stages.download import media
    from lectern.stages.keyframes import run as keyframes
    from lectern.store import LocalStore

    with tempfile.TemporaryDirectory(prefix="lectern-bench-") as home:
        settings = Settings.from_env({"LECTERN_HOME": home, "LECTERN_KEYFRAME_SAMPLING": sampling})
        store = LocalStore(Path(home) / "store")
        probe = media.probe(Path(path))
        store.put_file(artifact_key("download", "source", "bench"), Path(path))
        store.put_json(artifact_key("download", "probe", "bench"), probe)
        duration = float(probe["duration_s"])
        segments = [{"start": t, "end": t + 9.5, "text": "A sentence."} for t in range(0, int(duration), 10)]
        store.put_json(artifact_key("transcribe", "asr", "bench"), {"segments": segments})
        video = VideoRecord(id="bench", url="", title="bench", description="", duration_s=duration,
                            artifacts={"download": {"source": artifact_key("download", "source", "bench")},
                                       "transcribe": {"asr": artifact_key("transcribe", "asr", "bench")}})
        started = time.perf_counter()
        result = keyframes.run(video, store, settings)
        seconds = time.perf_counter() - started
        clips = store.get_json(artifact_key("keyframes", "clips", "bench"))["clips"]
    return seconds, result.metrics, [f["time"] for c in clips for f in c["keyframes"]]


def full_decode_s(path: str) -> float:
    """`ffmpeg -i FILE -f null -`: the best of two."""
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        subprocess.run(["ffmpeg", "-loglevel", "error", "-i", path, "-f", "null", "-"], check=True)
        best = min(best, time.perf_counter() - started)
    return best


def encodes(minutes: float = 3.0) -> list[dict]:
    from lectern_dev.synthetic import match_changes

    rows = []
    for label, codec, size, fps, noise, target in ENCODES:
        name = f"lecture-{minutes:g}min-{codec}-{size[1]}p-default-gop"
        path, truth = encode(name, minutes, codec, size, fps, noise, None)
        run_stage(clip_of(*video(1.0), 20.0)[0])  # warm-up
        decode_s = full_decode_s(path)
        row = {"video": label, "video_s": truth["duration"], "decode_s": decode_s, "target": target}
        for sampling in ("auto", "interval"):
            seconds = float("inf")
            for _ in range(2):  # the best of two
                took, metrics, found = run_stage(path, sampling)
                seconds = min(seconds, took)
            score = match_changes(found[1:], truth["changes"], 1.0 + 0.25)  # one sample, and a P-frame after it
            row[sampling] = {"seconds": seconds, "mode": metrics["sampling"], "keyframes": len(found),
                             "recall": score["recall"], "precision": score["precision"]}
        rows.append(row)
    return rows


def encodes_table(rows: list[dict]) -> list[str]:
    lines = ["| video | full decode s (x realtime) | stage s, auto (x realtime) | stage / full decode | target | "
             "recall, precision | stage s, every frame decoded (x realtime) | its recall, precision |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        auto, every = r["auto"], r["interval"]
        x = lambda s: r["video_s"] / s  # noqa: E731
        lines.append(
            f"| {r['video']}, {r['video_s']:.0f} s | {r['decode_s']:.2f} ({x(r['decode_s']):.0f}x) | "
            f"{auto['seconds']:.2f} ({x(auto['seconds']):.0f}x, {auto['mode']}) | "
            f"{r['decode_s'] / auto['seconds']:.2f}x | >= {r['target']:.0f}x realtime = "
            f"{r['target'] / x(r['decode_s']):.2f}x full decode here | {auto['recall']:.3f}, {auto['precision']:.3f} | "
            f"{every['seconds']:.2f} ({x(every['seconds']):.0f}x) | {every['recall']:.3f}, {every['precision']:.3f} |")
    return lines


# --- layouts -------------------------------------------------------------------------------------------------------

def layouts() -> list[dict]:
    from lectern.stages.keyframes import decoding, faces, selection
    from lectern_dev.layouts import LAYOUTS, score_states, write_layout

    rows = []
    for name in LAYOUTS:
        row = {"layout": name}
        for path_name, gop_s in (("iframes", 1.0), ("scan", None)):
            path = CACHE / "layouts" / f"{name}-{path_name}.mp4"
            truth_file = path.with_suffix(".json")
            if not truth_file.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                print(f"generating {path.name} ...", flush=True)
                truth_file.write_text(json.dumps(write_layout(path, name, fps=25, gop_s=gop_s)))
            truth = json.loads(truth_file.read_text())
            mode = decoding.choose_sampling(str(path), 2.0)
            found = selection.select_keyframes(decoding.sample_frames(str(path), mode, 1.0, WIDTH, THRESHOLD, GRID),
                                            THRESHOLD, GRID)
            marked = [(k.time, faces.face_area_ratio(k.gray) > 0.04) for k in found]
            row[path_name] = {"mode": mode, "duration": truth["duration"], **score_states(marked, truth)}
        rows.append(row)
    return rows


def layouts_table(rows: list[dict]) -> list[str]:
    lines = ["| layout | I-frames every 1 s: recall, precision (keyframes) | x264 default GOP, scan: recall, precision "
             "(keyframes) |", "| --- | --- | --- |"]
    for r in rows:
        cell = lambda s: f"{s['recall']:.2f}, {s['precision']:.2f} ({s['keyframes']})"  # noqa: E731
        lines.append(f"| {r['layout']} | {cell(r['iframes'])} | {cell(r['scan'])} |")
    return lines


# --- memory --------------------------------------------------------------------------------------------------------

def many_slides(count: int) -> str:
    """`count` distinct slides of 3 s each, 720p at 2 fps, an I-frame a second."""
    from lectern_dev.synthetic import Scene, write_video

    path = CACHE / f"slides-{count}-3s.mp4"
    if not path.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"generating {path.name} ...", flush=True)
        scenes = [Scene(f"Slide {n}", (f"{WORDS[n % len(WORDS)]} fact number {n}",), seconds=3.0)
                  for n in range(count)]
        write_video(path, scenes, fps=2, gop_s=1.0)
    return str(path)


def memory(counts: list[int]) -> list[dict]:
    rows = []
    for count in counts:
        path = many_slides(count)
        run = run_measured([sys.executable, __file__, "--stage", path])
        if run.exit_code:
            raise RuntimeError(f"the keyframes stage failed on {path}")
        rows.append({"slides": count, "wall_s": run.seconds, "peak_rss_mib": run.peak_rss_mib,
                     "keyframes": int(run.stdout.split()[-1])})
    return rows


def memory_table(rows: list[dict]) -> list[str]:
    lines = ["| distinct slides (3 s each, 720p) | keyframes | stage process wall s | peak RSS MiB |",
             "| --- | --- | --- | --- |"]
    lines += [f"| {r['slides']} | {r['keyframes']} | {r['wall_s']:.1f} | {r['peak_rss_mib']:.0f} |" for r in rows]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the accuracy video")
    parser.add_argument("--naive-seconds", type=float, default=60.0, help="length of the clip naive runs on")
    parser.add_argument("--encode-minutes", type=float, default=3.0, help="length of the real-encode videos")
    parser.add_argument("--memory-slides", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--stage", help=argparse.SUPPRESS)  # the memory section's child: run the stage on a file
    args = parser.parse_args()
    if args.stage:
        print(len(run_stage(args.stage)[2]))
        return
    print(f"\nkeyframes benchmark on {machine()} (threshold {THRESHOLD}, grid {GRID[0]}x{GRID[1]})\n")
    out: list[str] = []
    for section in args.only:
        if section == "accuracy":
            part = ["### Accuracy and the fast path", "", *table(measure(args.minutes, args.naive_seconds))]
        elif section == "encodes":
            part = ["### The keyframes stage on real encodes", "", *encodes_table(encodes(args.encode_minutes))]
        elif section == "layouts":
            part = ["### Recorded-lecture layouts", "", *layouts_table(layouts())]
        else:
            part = ["### Memory", "", *memory_table(memory(args.memory_slides))]
        print("\n".join(part), "\n", flush=True)
        out += [*part, ""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
