"""What the benchmarks share: the machine they ran on, the cached inputs (tiny models, narrated lecture videos),
a state DB seeded with videos, and running one stage as a pod does -- a `lectern stage` process -- with its wall
time and peak memory."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".lectern" / "bench"
NARRATION = ("Today we study how cells turn food into energy. First, glycolysis splits glucose into two molecules "
             "of pyruvate. Then the citric acid cycle releases carbon dioxide and stores energy in carriers. "
             "Finally, the electron transport chain makes most of the ATP. Let us look at each step in turn. ")


TITLE = "Cellular respiration lecture"
DESCRIPTION = "How cells turn glucose into ATP: glycolysis, the citric acid cycle and the electron transport chain."


def machine() -> str:
    """One line: CPU model, cores, memory, and the GPU when there is one."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                         if line.startswith("MemTotal"))
    except (OSError, StopIteration):
        memory_kb = 0
    gpu = "no GPU"
    try:
        names = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                               text=True, timeout=20).stdout.strip()
        gpu = names.replace("\n", ", ") or gpu
    except (OSError, subprocess.SubprocessError):
        pass
    return f"{cpu}, {os.cpu_count()} cores, {memory_kb / 2**20:.0f} GiB, {gpu}, Python {platform.python_version()}"


def tiny_models() -> dict[str, str]:
    from lectern_dev.tiny_models import build_all

    return build_all(CACHE / "models")


# --- generated lectures (bench/keyframes.py's, and the narrated one the pipeline benches use) ---------------------

WORDS = ("Enzymes Kinetics Membranes Transport Signalling Metabolism Glycolysis Respiration Photosynthesis Genetics "
         "Replication Transcription Translation Mutation Evolution Ecology Homeostasis Immunity Neurons "
         "Hormones").split()


def lecture_scenes(minutes: float):
    """Slides of 10-20 s; every third one fades in, every fourth reveals three bullets one at a time."""
    from lectern_dev.synthetic import Scene, bullet_reveal

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
    return encode(f"lecture-{minutes:g}min", minutes, "libx264", (1280, 720), 25, 4.0, 2.0)


def encode(name: str, minutes: float, codec: str, size: tuple[int, int], fps: int, noise: float,
           gop_s: float | None) -> tuple[str, dict]:
    from lectern_dev.synthetic import write_video

    path = CACHE / (f"{name}.webm" if codec == "libvpx-vp9" else f"{name}.mp4")
    truth_file = path.with_suffix(".json")
    if not truth_file.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"generating {path.name} ...", flush=True)
        truth = write_video(path, lecture_scenes(minutes), fps=fps, noise=noise, gop_s=gop_s, codec=codec, size=size)
        truth_file.write_text(json.dumps(truth))
    return str(path), json.loads(truth_file.read_text())


def narrated_lecture(minutes: float, speech_minutes: float | None = None) -> tuple[Path, float]:
    """A 720p H.264 slide lecture (bench/keyframes.py's, I-frames every 2 s) with a narration track: espeak-ng
    reading a paragraph over and over, for `speech_minutes` (default: throughout) and silence after. A lecture
    longer than 5 minutes repeats the 5-minute one (stream copy), so an hour is made in seconds."""
    name = f"narrated-{minutes:g}min" + (f"-speech{speech_minutes:g}" if speech_minutes is not None else "")
    out = CACHE / f"{name}.mp4"
    if out.is_file():
        return out, probe_duration(out)
    base, _truth = video(min(minutes, 5.0))
    silent = Path(base)
    if minutes > 5.0:
        silent = CACHE / f"lecture-{minutes:g}min-repeated.mp4"
        listing = CACHE / f"{silent.stem}.txt"
        listing.write_text(f"file '{base}'\n" * int(-(-minutes // 5)))
        _ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-t", str(minutes * 60), "-c", "copy", str(silent))
    speech = CACHE / "narration.wav"
    if not speech.is_file():
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(speech), NARRATION * 2], check=True, capture_output=True)
    trim = f"atrim=0:{speech_minutes * 60}," if speech_minutes is not None else ""
    _ffmpeg("-i", str(silent), "-stream_loop", "-1", "-i", str(speech),
            "-filter_complex", f"[1:a]{trim}apad,aresample=16000[a]", "-map", "0:v", "-map", "[a]",
            "-c:v", "copy", "-c:a", "aac", "-ac", "1", "-shortest", "-movflags", "+faststart", str(out))
    return out, probe_duration(out)


def probe_duration(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return float(json.loads(out)["format"]["duration"])


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", *args], check=True)


def seed(db_url: str, videos: list[tuple[str, str]]) -> None:
    """(video id, url) pairs, each a pending download, as a search would leave them."""
    from lectern.state.catalog import FoundVideo, PointSpec, record_search, sync_subject
    from lectern.state.db import migrate, session_scope

    migrate(db_url)
    with session_scope(db_url) as session:
        # the narration's topic, so the judge finds the transcript relevant to the point that found it
        [point] = sync_subject(session, "Biology", [PointSpec("Cellular respiration", "Cellular respiration",
                                                              "cellular respiration glycolysis ATP lecture")])
        record_search(session, point, [FoundVideo(video_id, url, TITLE, DESCRIPTION) for video_id, url in videos], {})


def bench_environment(home: Path, models: dict[str, str], **extra: str) -> dict[str, str]:
    """The process environment of a benchmark run: the demo's settings (tiny models, loopback downloads)."""
    from lectern_dev.demo import demo_settings

    return {**os.environ, **demo_settings(models), "LECTERN_HOME": str(home), **extra}


@dataclass
class StageRun:
    seconds: float  # wall time of the process
    peak_rss_mib: float  # its peak resident memory, children included
    exit_code: int
    stdout: str = ""


# Measures the peak RSS of the command it starts. A process forked from a big one starts with the big one's RSS
# high-water mark (Linux carries it over fork and exec), so the benchmark process, grown large itself, does not
# start the stage directly: this small launcher does, as /usr/bin/time would.
_LAUNCHER = """
import os, subprocess, sys
process = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
output = process.stdout.read()
_pid, status, usage = os.wait4(process.pid, 0)
sys.stderr.buffer.write(output)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_stage_process(stage: str, video_ids: list[str], env: dict[str, str], force: bool = False) -> StageRun:
    """`python -m lectern stage STAGE --video-id ...`, as a pod runs it; wall time and peak RSS (see run_measured)."""
    return run_measured([sys.executable, "-m", "lectern", "stage", stage, *(["--force"] if force else []),
                         "--video-id", *video_ids], env)


def run_measured(command: list[str], env: dict[str, str] | None = None) -> StageRun:
    """Run a command; its wall time and peak RSS (wait4's ru_maxrss: the largest of the process and the children
    it waited for -- ffmpeg, tesseract)."""
    started = time.monotonic()
    launched = subprocess.run([sys.executable, "-c", _LAUNCHER, *command], env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    peak_kib = int(launched.stdout.split()[-1]) if launched.stdout.split() else 0
    return StageRun(seconds, peak_kib / 1024, launched.returncode, launched.stderr)
