"""End-to-end pipeline benchmark: every phase of one narrated lecture, each run as a pod runs it (a `lectern stage`
process), on the embedded defaults with the tiny models. Per stage: the process's wall time, the stage's own
seconds (as recorded in its state row: the work, without the process start and imports a pod pays once per
batch), x realtime and peak RSS (the largest process of the stage).

    .venv/bin/python bench/pipeline.py [--minutes 5] [--speech-minutes M]

A 60-minute run (--minutes 60 --speech-minutes 3: the tiny Whisper on the CPU would take half an hour for an hour
of speech, and the audio is decoded and chunked through the whole hour either way) shows that memory stays bounded.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import CACHE, bench_environment, machine, narrated_lecture, run_stage_process, seed, tiny_models

from lectern.config import Settings
from lectern.pipeline import GPU_STAGES
from lectern.recipes import RECIPES
from lectern.state.db import session_scope
from lectern.state.reports import stage_rows
from lectern_dev.server import CorpusServer

TEXTBOOK = RECIPES["textbook"].stages  # the lecture pipeline's phases
CPU_PHASES = tuple(s for s in TEXTBOOK if s not in GPU_STAGES)  # download, keyframes, ocr, assemble
WITH_ASR = tuple(s for s in TEXTBOOK if s != "judge")  # the CPU phases and transcribe


def run_pipeline(minutes: float, speech_minutes: float | None = None) -> dict:
    """{"video_s", "stages": {stage: {"wall_s", "stage_s", "peak_rss_mib", "status"}}} for one lecture."""
    path, duration = narrated_lecture(minutes, speech_minutes)
    models = tiny_models()
    video_id = path.stem.replace(".", "_")
    stages = {}
    with tempfile.TemporaryDirectory(prefix="lectern-bench-") as home, CorpusServer(CACHE) as server:
        env = bench_environment(Path(home), models, LECTERN_MAX_DURATION_S=str(int(duration) + 60),
                                LECTERN_MAX_DOWNLOAD_MB="4096",
                                # mostly silence on purpose (see above): the speech-ratio gate would reject it
                                **({"LECTERN_ASR_MIN_SPEECH_RATIO": "0"} if speech_minutes is not None else {}))
        settings = Settings.from_env(env)
        seed(settings.db_url, [(video_id, f"{server.base_url}/{path.name}")])
        for stage in TEXTBOOK:
            run = run_stage_process(stage, [video_id], env)
            with session_scope(settings.db_url) as session:
                [row] = stage_rows(session, video_ids=[video_id], stage=stage)
                stages[stage] = {"wall_s": run.seconds, "stage_s": (row.metrics or {}).get("stage_seconds"),
                                 "peak_rss_mib": run.peak_rss_mib, "status": row.status}
            if row.status != "succeeded":
                raise RuntimeError(f"{stage} ended {row.status}: {row.reason or row.error_message}")
    return {"video_s": duration, "stages": stages}


def realtime(result: dict, stages, key: str = "stage_s") -> float:
    return result["video_s"] / sum(result["stages"][s][key] for s in stages)


def table(result: dict, title: str) -> list[str]:
    lines = [f"{title} ({result['video_s']:.0f} s of video)", "",
             "| stage | process wall s | stage s | x realtime (stage s) | peak RSS MiB |",
             "| --- | --- | --- | --- | --- |"]
    for stage, row in result["stages"].items():
        lines.append(f"| {stage} | {row['wall_s']:.1f} | {row['stage_s']:.2f} | "
                     f"{result['video_s'] / row['stage_s']:.0f} | {row['peak_rss_mib']:.0f} |")
    lines.append("")
    for name, stages in (("CPU pipeline without ASR", CPU_PHASES), ("CPU pipeline with the tiny Whisper", WITH_ASR),
                         ("every phase (tiny Whisper and LLM judges)", TEXTBOOK)):
        lines.append(f"{name} ({', '.join(stages)}): {realtime(result, stages):.1f}x realtime by stage seconds, "
                     f"{realtime(result, stages, 'wall_s'):.1f}x by process wall time")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--speech-minutes", type=float, help="narration only this long, silence after")
    args = parser.parse_args()
    result = run_pipeline(args.minutes, args.speech_minutes)
    print(f"\npipeline benchmark on {machine()}\n")
    print("\n".join(table(result, f"{args.minutes:g}-minute 720p lecture")))


if __name__ == "__main__":
    main()
