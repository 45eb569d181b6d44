"""assemble: interleave each clip's keyframes, OCR and ASR into samples in the published corpus format.

Within a clip, in time order: its keyframes (image positions), then one text position holding the ASR
(``texts``) and OCR + ASR (``text_ocr_list``). Clips are concatenated into samples up to
LECTERN_SAMPLE_TOKEN_BUDGET tokens (each image counts LECTERN_IMAGE_TOKENS, text counts real tokenizer
tokens). Also writes the clip-level file with its closing ``{"vid": "End of a Video"}`` entry.
"""

from __future__ import annotations

import json

from lectern import models
from lectern.config import Settings
from lectern.errors import MissingInput
from lectern.stages import StageResult
from lectern.state.ops import VideoRecord
from lectern.store import Keys, Store

NAME = "assemble"
VERSION = "2"  # 2: video_meta carries label and cover_url (URL-manifest corpora)
# Settings whose change makes this stage's earlier results stale (lectern.stages.stage_version).
CONFIG = ("tokenizer", "embedding_model", "image_tokens", "sample_token_budget", "sample_max_images")
END_OF_VIDEO = "End of a Video"


def count_tokens(text: str, tokenizer_name: str) -> int:
    if not text:
        return 0
    return len(models.tokenizer(tokenizer_name).encode(text, add_special_tokens=False).ids)


def clip_entries(video_id: str, clips: list[dict], ocr: dict[str, str], settings: Settings) -> list[dict]:
    """One entry per clip that has anything to say, with its positions and token counts."""
    tokenizer = settings.tokenizer or settings.embedding_model
    entries = []
    for clip in clips:
        frames = clip["keyframes"]
        asr = clip["asr"].strip()
        refined = (clip.get("refined_asr") or "").strip() or None
        text = refined or asr  # the textbook's text: the rewrite where the guard kept it
        if not frames and not text:
            continue
        ocr_texts = [ocr.get(f["key"], "") for f in frames]
        ocr_joined = " ".join(t for t in ocr_texts if t)
        asr_tokens = count_tokens(text, tokenizer)
        entries.append({
            "vid": video_id,
            "clip_path": f"{video_id}@{clip['start']:.1f}_{clip['end']:.1f}",
            "start": clip["start"], "end": clip["end"],
            "asr": asr, "refined_asr": refined, "text": text,
            "extracted_frames": [f["key"] for f in frames],
            "frame_times": [f["time"] for f in frames],
            "keyframe_ssim": [f["ssim"] for f in frames],
            "ocr": ocr_texts,
            "ocr_joined": ocr_joined,
            "image_tokens": settings.image_tokens * len(frames),
            "asr_token_num": asr_tokens,
            "ocr_token_num": count_tokens(ocr_joined, tokenizer),
            "token_num": asr_tokens + settings.image_tokens * len(frames),
        })
    return entries


def build_samples(entries: list[dict], budget: int, max_images: int | None = None) -> list[dict]:
    """Concatenate clip entries into samples of at most `budget` tokens and `max_images` images (a single clip
    larger than either stands alone)."""
    samples, current = [], []
    for entry in entries:
        tokens = sum(e["token_num"] for e in current) + entry["token_num"]
        images = sum(len(e["extracted_frames"]) for e in current) + len(entry["extracted_frames"])
        if current and (tokens > budget or (max_images is not None and images > max_images)):
            samples.append(_sample(current))
            current = []
        current.append(entry)
    if current:
        samples.append(_sample(current))
    return samples


def _sample(entries: list[dict]) -> dict:
    images, texts, text_ocr, metadata = [], [], [], []
    for entry in entries:
        for key, moment, ssim in zip(entry["extracted_frames"], entry["frame_times"], entry["keyframe_ssim"]):
            images.append(key)
            texts.append(None)
            text_ocr.append(None)
            metadata.append({"vid": entry["vid"], "clip": entry["clip_path"], "time": moment, "keyframe_ssim": ssim})
        if entry["text"] or entry["ocr_joined"]:
            images.append(None)
            texts.append(entry["text"] or None)
            text_ocr.append("\n".join(t for t in (entry["ocr_joined"], entry["text"]) if t))
            metadata.append({"vid": entry["vid"], "clip": entry["clip_path"], "start": entry["start"], "end": entry["end"]})
    image_num = sum(1 for i in images if i is not None)
    return {
        "images": images, "texts": texts, "text_ocr_list": text_ocr, "metadata": metadata,
        "image_num": image_num, "text_num": sum(1 for t in texts if t is not None),
        "token_num": sum(e["token_num"] for e in entries),
    }


def video_meta_data(video: VideoRecord, store: Store, settings: Settings) -> dict:
    """The video's record in the published ``video_meta_data`` shape (title, desc, duration, language, search
    keyword, the judges' responses and scores, a repetition flag), plus where it was found."""
    asr_key = video.artifacts.get("transcribe", {}).get("asr")
    asr = store.get_json(asr_key) if asr_key else {}
    judge_key = video.artifacts.get("judge", {}).get("judge")
    verdict = store.get_json(judge_key) if judge_key else {}
    repeated = (asr.get("metrics") or {}).get("repeated_ngram_ratio")
    judged = {k: v for k, v in verdict.items() if k == "llm_response" or k.endswith(("_score", "_decision"))}
    return {
        "video_id": video.id, "url": video.url, "title": video.title, "desc": video.description,
        "duration": video.duration_s, "language": asr.get("language") or video.language,
        "search_keyword": video.queries[0] if video.queries else None, "search_keywords": list(video.queries),
        "subjects": list(video.subjects), "knowledge_points": list(video.points),
        "label": video.labels[0] if video.labels else None, "cover_url": video.cover_url,
        "relevance": verdict.get("relevance"), **judged,
        "repeated_ngram_ratio": repeated,
        "if_repetition": None if repeated is None else repeated > settings.asr_max_repeated_ngrams,
    }


def run(video: VideoRecord, store: Store, settings: Settings) -> StageResult:
    clips_key = video.artifacts.get("keyframes", {}).get("clips")
    ocr_key = video.artifacts.get("ocr", {}).get("ocr")
    if not clips_key or not ocr_key:
        raise MissingInput(f"{video.id}: assemble needs clips and OCR")
    clips = store.get_json(clips_key)["clips"]
    ocr = store.get_json(ocr_key)["texts"]
    entries = clip_entries(video.id, clips, ocr, settings)
    samples = build_samples(entries, settings.sample_token_budget, settings.sample_max_images)
    samples_key = store.put_bytes(Keys.samples(video.id),
                                  "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples).encode())
    clip_level = {
        "token_num": sum(e["token_num"] for e in entries),
        "conversations": entries + [{"vid": END_OF_VIDEO, "clip_path": None, "token_num": 0}],
    }
    clip_key = store.put_json(Keys.clip_level(video.id), clip_level)
    meta_key = store.put_json(Keys.video_meta(video.id), video_meta_data(video, store, settings))
    metrics = {"samples": len(samples), "clips": len(entries), "images": sum(s["image_num"] for s in samples),
               "tokens": clip_level["token_num"],
               "asr_tokens": sum(e["asr_token_num"] for e in entries),
               "ocr_tokens": sum(e["ocr_token_num"] for e in entries)}
    if not samples:
        return StageResult.rejected("nothing to assemble (no clip with keyframes or speech)", metrics)
    return StageResult.succeeded({"samples": samples_key, "clip_level": clip_key, "video_meta": meta_key}, metrics)
