"""`make bench`: every benchmark, then one summary table (figure, measured, target) with the machine it ran on,
followed by each benchmark's own table. Not part of `make test`. Writes the report to .lectern/bench/report.md and
appends the summary rows, dated, to bench/results/measurements.csv (bench/figures.py renders them).

    .venv/bin/python bench/run.py [--only keyframes ocr asr pipeline memory overhead gpu] [--overhead-videos N ...]

Takes about three hours on a 2-core machine, most of it the Airflow overhead runs (50 videos a task each and
25 per CPU task, 200 videos 25 per CPU task; --overhead-videos N ... runs each N both ways).
On a machine with CUDA, the GPU row transcribes with LECTERN_BENCH_GPU_MODEL (a real-size CTranslate2 Whisper,
an id or a local path) at batch sizes 16-64; without one it reads "not measured".
"""

from __future__ import annotations

import argparse
import os
import time

import asr
import figures
import keyframes
import ocr
import overhead
import pipeline
from common import CACHE, machine

SECTIONS = ("keyframes", "ocr", "asr", "pipeline", "memory", "overhead", "gpu")


def cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def gpu_rows() -> list[dict]:
    """WhisperX on CUDA at batch sizes 16-64: x realtime (loading amortised), and peak GPU memory as nvidia-smi
    sees it (CTranslate2 allocates outside torch's counters), sampled every half second during the run."""
    import subprocess
    import threading

    model = os.environ.get("LECTERN_BENCH_GPU_MODEL", "large-v3")
    rows = []
    for batch in (16, 32, 64):
        os.environ.update(LECTERN_ASR_DEVICE="cuda", LECTERN_ASR_COMPUTE_TYPE="float16",
                          LECTERN_ASR_BATCH_SIZE=str(batch))
        peak, done = [0.0], threading.Event()

        def sample():
            while not done.wait(0.5):
                used = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                      capture_output=True, text=True).stdout.split()
                peak[0] = max([peak[0], *map(float, used)])

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            [_, batched] = asr.measure(4, model)
        finally:
            done.set()
            sampler.join()
        rows.append({**batched, "batch": batch, "gpu_mib": peak[0]})
    return rows


def summary(results: dict) -> list[tuple[str, str, str]]:
    """(figure, measured, target) of every figure the run measured."""
    rows: list[tuple[str, str, str]] = []
    add = lambda figure, measured, target="": rows.append((figure, measured, target))  # noqa: E731
    if "keyframes" in results:
        kf = results["keyframes"]
        by = {(r["method"], r["video"]): r for r in kf["rows"]}
        long = f"{kf['minutes']:g} min"
        add(f"keyframes, fast path ({long} 720p)", f"{by[('fast path (I-frames, 320 px)', long)]['realtime']:.0f}x "
            "realtime", ">= 200x")
        add("keyframes, naive exact (every frame, full size)",
            f"{by[('naive exact (every frame, full size)', 'clip')]['realtime']:.1f}x realtime")
        add("keyframes, fast path vs naive (same clip)", f"{kf['fast_vs_naive']:.0f}x faster")
        for r in kf.get("encodes", []):
            stage = r["auto"]["seconds"]
            add(f"keyframes stage, {r['video']}", f"{r['video_s'] / stage:.0f}x realtime ({r['auto']['mode']}), "
                f"{r['decode_s'] / stage:.2f}x a full decode; recall {r['auto']['recall']:.3f}",
                f">= {r['target']:.0f}x")
    if "ocr" in results:
        for r in results["ocr"]:
            add(f"OCR, {r['method']}, {r['cores']} core{'s' * (r['cores'] > 1)}",
                f"{r['per_keyframe_s']:.3f} s per keyframe")
    if "asr" in results:
        for r in results["asr"]:
            add(f"ASR ({r['model']}, CPU), {r['mode']}", f"{r['realtime']:.2f}x realtime, model load "
                f"{r['load_share']:.0%} of the time")
    for key, label, target in (("pipeline", "5-minute lecture", ">= 50x"), ("memory", "60-minute lecture", "")):
        if key in results:
            result = results[key]
            add(f"CPU pipeline without ASR, {label}", f"{pipeline.realtime(result, pipeline.CPU_PHASES):.0f}x realtime",
                target)
            add(f"CPU pipeline with tiny.en, {label}",
                f"{pipeline.realtime(result, pipeline.WITH_ASR):.1f}x realtime")
    if "memory" in results:
        stages = results["memory"]["stages"]
        worst = max(stages, key=lambda s: stages[s]["peak_rss_mib"])
        add("peak RSS of any stage, 60-minute 720p lecture", f"{stages[worst]['peak_rss_mib']:.0f} MiB ({worst})",
            "< 2048 MiB")
    for r in results.get("overhead", []):
        add(f"Airflow overhead, {r['videos']} videos through every phase, {r['cpu_videos_per_task']} per CPU task",
            f"{r['overhead']:+.1%} of direct CLI wall time; outside stage work "
            f"{overhead.outside_work(r, 'direct'):.0f} s "
            f"direct, {overhead.outside_work(r, 'airflow'):.0f} s Airflow; Airflow's own CPU "
            f"{overhead.airflow_cpu_share(r):.1%} of the stages' CPU", "<= 5 % at 200")
    if results.get("gpu"):
        for r in results["gpu"]:
            add(f"ASR on the GPU, {r['model']}, batch {r['batch']}", f"{r['realtime_loaded']:.0f}x realtime with "
                f"model loading amortised ({r['realtime']:.0f}x with one load for 4 videos), "
                f"{r['gpu_mib']:.0f} MiB GPU "
                "memory", ">= 100x")
    elif "gpu" in results:
        add("ASR on an H200-class GPU", "not measured (no GPU on this machine)", ">= 100x")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--overhead-videos", type=int, nargs="+",
                        help="numbers of videos, each run with a task per video and with 25 per CPU task "
                             "(default: 50 both ways, 200 grouped)")
    parser.add_argument("--naive-seconds", type=float, default=30.0)
    args = parser.parse_args()
    started = time.monotonic()
    results: dict = {}
    details: list[str] = []
    for section in args.only:
        print(f"== {section}", flush=True)
        if section == "keyframes":
            results[section] = {**keyframes.measure(5.0, args.naive_seconds), "encodes": keyframes.encodes(3.0)}
            details += ["### Keyframes", "", *keyframes.table(results[section]), "",
                        *keyframes.encodes_table(results[section]["encodes"])]
        elif section == "ocr":
            results[section] = ocr.ocr_rows(24)
            details += ["### OCR (24 keyframes of 1280x720)", "", *ocr.table(results[section])]
            details += ["", "### OCR engines (each layout's keyframes, word recall against the slides' text)", "",
                        *ocr.engine_table(ocr.engine_rows())]
        elif section == "asr":
            results[section] = asr.measure(4)
            details += ["### ASR (tiny.en on the CPU, the 4 demo videos)", "", *asr.table(results[section])]
        elif section == "pipeline":
            results[section] = pipeline.run_pipeline(5.0)
            details += ["### Pipeline", "", *pipeline.table(results[section], "5-minute 720p lecture")]
        elif section == "memory":
            results[section] = pipeline.run_pipeline(60.0, speech_minutes=3.0)
            details += ["### Memory", "", *pipeline.table(results[section], "60-minute 720p lecture, speech in "
                                                                            "its first 3 minutes")]
        elif section == "overhead":
            runs = [(n, k) for n in args.overhead_videos for k in (1, 25)] if args.overhead_videos else overhead.RUNS
            results[section] = [overhead.overhead(n, 12.0, k) for n, k in runs]
            details += ["### Airflow overhead", "", *overhead.table(results[section]), "",
                        "Per phase", "", *overhead.phase_table(results[section]), "",
                        "CPU", "", *overhead.cpu_table(results[section]), "",
                        "Airflow's processes' CPU s, by part", "", *overhead.airflow_parts_table(results[section])]
        elif section == "gpu":
            results[section] = gpu_rows() if cuda_available() else []
        details.append("")
    rows = summary(results)
    figures.record(rows, machine())  # the data behind docs/performance.md's table (bench/figures.py)
    report = [f"Lectern benchmarks on {machine()} ({(time.monotonic() - started) / 60:.0f} min)", "",
              "| figure | measured | target |", "| --- | --- | --- |",
              *(f"| {figure} | {measured} | {target} |" for figure, measured, target in rows), "", *details]
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "report.md").write_text("\n".join(report) + "\n")
    print("\n" + "\n".join(report))


if __name__ == "__main__":
    main()
