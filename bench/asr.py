"""ASR benchmark: realtime factor and model-load share, one process per video vs one process for all videos.

    .venv/bin/python bench/asr.py [--videos N] [--model PATH_OR_ID]

Default: the tiny local Whisper on the demo corpus (CPU). With --model large-v3 and LECTERN_ASR_DEVICE=cuda it
measures the real thing on a GPU machine. Prints a table; writes nothing outside a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lectern.config import Settings
from lectern.demo.corpus import generate
from lectern.demo.run import demo_settings
from lectern.demo.server import CorpusServer
from lectern.models.tiny import build_all
from lectern.runner import run_stage
from lectern.state.db import migrate, session_scope
from lectern.state.ops import FoundVideo, PointSpec, record_search, stage_rows, sync_subject

ROOT = Path(__file__).resolve().parents[1]


def transcribe(video_ids: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "lectern", "stage", "transcribe", "--force", "--video-id", *video_ids],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--model", help="Whisper model id or path (default: the tiny local model)")
    args = parser.parse_args()

    cache = ROOT / ".lectern" / "bench-cache"
    models = build_all(cache / "models")
    corpus_dir = cache / "corpus"
    truth = generate(corpus_dir)
    video_ids = list(truth["videos"])[: args.videos]
    with tempfile.TemporaryDirectory(prefix="lectern-bench-") as tmp, CorpusServer(corpus_dir) as server:
        env = {**os.environ, **demo_settings(models), "LECTERN_HOME": tmp,
               "LECTERN_ASR_HALLUCINATION_CHECKS": "false"}
        if args.model:
            env["LECTERN_WHISPER_MODEL"] = args.model
        settings = Settings.from_env(env)
        migrate(settings.db_url)
        with session_scope(settings.db_url) as session:
            [point] = sync_subject(session, "Bench", [PointSpec("bench", "bench", "bench")])
            record_search(session, point, [FoundVideo(v, f"{server.base_url}/{v}.mp4") for v in video_ids], {})
        for video_id in video_ids:
            run_stage("download", video_id, settings)

        rows = []
        per_video = sum(transcribe([v], env) for v in video_ids)
        rows.append(("one process per video", per_video, metrics(settings, video_ids)))
        batched = transcribe(video_ids, env)
        rows.append((f"one process, {len(video_ids)} videos", batched, metrics(settings, video_ids)))

    print(f"ASR benchmark on {platform.node()} ({os.cpu_count()} CPUs, {settings.asr_device}), "
          f"model {settings.whisper_model}")
    print(f"{'mode':<26} {'audio s':>8} {'wall s':>8} {'x realtime':>11} {'model load s':>13} {'load share':>11}")
    for mode, wall, (audio, load) in rows:
        print(f"{mode:<26} {audio:8.1f} {wall:8.1f} {audio / wall:11.2f} {load:13.1f} {load / wall:11.0%}")


def metrics(settings: Settings, video_ids: list[str]) -> tuple[float, float]:
    """(audio seconds, model-load seconds) recorded by the last transcribe of each video."""
    with session_scope(settings.db_url) as session:
        found = stage_rows(session, video_ids=video_ids, stage="transcribe")
        return (sum(r.metrics["duration_s"] for r in found), sum(r.metrics["model_load_seconds"] for r in found))


if __name__ == "__main__":
    main()
