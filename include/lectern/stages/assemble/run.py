"""The assemble stage's work: run(video, store, settings) -> StageResult (what it does: its package's docstring)."""

from __future__ import annotations

import json

from lectern.config import Settings
from lectern.errors import MissingInput
from lectern.packing import count_tokens, end_of_video, neutral, pack, sample, tokenizer_name
from lectern.pipeline import artifact_key
from lectern.stage_types import StageResult, VideoRecord
from lectern.store import Store


def clip_entries(video_id: str, clips: list[dict], ocr: dict, settings: Settings) -> list[dict]:
    """One clip-level record per clip that has anything to say, in the published shape: `keyframe_ssim` the SSIM
    keyframes (store keys), `extracted_frames` the times of the frames sampled and compared (Lectern keeps only the
    keyframes' images), `ocr_<engine>` what OCR read on the keyframes and `..._deduplicates` what was kept."""
    tokenizer = tokenizer_name(settings)
    engine = ocr.get("engine", "tesseract")
    kept, details = ocr["texts"], ocr.get("details", {})
    entries = []
    for clip in clips:
        frames = clip["keyframes"]
        asr = neutral(clip["asr"].strip())
        refined = neutral((clip.get("refined_asr") or "").strip()) or None
        text = refined or asr  # the textbook's text: the rewrite where the guard kept it
        keys = [f["key"] for f in frames]
        deduplicated = neutral(" ".join(kept[k] for k in keys if kept.get(k)))
        if not frames and not text:
            continue
        asr_tokens = count_tokens(text, tokenizer)
        image_tokens = settings.image_tokens * len(frames)
        entries.append({
            "vid": video_id,
            "clip_path": f"{video_id}@{clip['start']:.1f}_{clip['end']:.1f}",
            "asr": asr, "refined_asr": refined,
            "extracted_frames": clip.get("sampled_times", []),
            "image_tokens": image_tokens,
            "token_num": asr_tokens + image_tokens,
            f"ocr_{engine}": neutral(" ".join(" ".join((details.get(k, {}).get("raw") or kept.get(k, "")).split())
                                              for k in keys).strip()),
            "ocr_image": [k for k in keys if kept.get(k)],
            f"ocr_{engine}_deduplicates": deduplicated,
            "keyframe_ssim": keys,
            **({"face_keyframes": faces} if (faces := [f["key"] for f in frames if f.get("face")]) else {}),
            "asr_token_num": asr_tokens,
            # Lectern's own: clip times, keyframe times and SSIM scores, the text a sample carries, OCR tokens.
            "start": clip["start"], "end": clip["end"], "text": text,
            "frame_times": [f["time"] for f in frames],
            "keyframe_ssim_scores": [f["ssim"] for f in frames],
            "ocr": deduplicated,
            "ocr_token_num": count_tokens(deduplicated, tokenizer),
        })
    return entries


def judge_fields(verdict: dict) -> dict:
    """The judges in the published shape: ``llm_response`` one string and ``<judge>_score`` one integer (the
    lowest of its criteria, the one that decides); each judge's answers and scores per criterion beside them."""
    fields: dict = {}
    responses = verdict.get("llm_response") or {}
    if isinstance(responses, dict):
        fields["llm_responses"] = responses
        fields["llm_response"] = "\n".join(f"{criterion}: {answer}" for answers in responses.values()
                                           for criterion, answer in answers.items()) or None
    for key, value in verdict.items():
        if key.endswith("_score") and isinstance(value, dict):
            scored = [s for s in value.values() if s is not None]
            fields[key] = int(min(scored)) if scored else None
            fields[f"{key}s"] = value
        elif key.endswith("_decision"):
            fields[key] = value
    return fields


def video_meta_data(video: VideoRecord, store: Store, settings: Settings) -> dict:
    """The video's record with the published ``video_meta_data`` keys and spellings (``file_size (MB)``,
    ``asr is repetive``, ...), then Lectern's own (where it was found, the relevance score, label and cover).
    ``asr_len`` counts the transcript's characters; there are no platform captions (``caption_len`` 0)."""
    asr_key = video.artifact("transcribe", "asr")
    asr = store.get_json(asr_key) if asr_key else {}
    judge_key = video.artifact("judge", "judge")
    verdict = store.get_json(judge_key) if judge_key else {}
    probe_key = artifact_key("download", "probe", video.id)
    probe = store.get_json(probe_key) if store.exists(probe_key) else {}
    source = video.artifact("download", "source")
    repeated = (asr.get("metrics") or {}).get("repeated_ngram_ratio")
    transcript = " ".join(s["text"].strip() for s in asr.get("segments", []))
    size = probe.get("size_bytes")
    return {
        "file_path": store.uri(source) if source else None,
        "file_size (MB)": size / (1024 * 1024) if size is not None else None,
        "file_name": f"{video.id}.mp4",
        "video_duration": probe.get("duration_s", video.duration_s),
        "unique": True,  # videos are deduplicated by id at discovery
        "asr_path": store.uri(asr_key) if asr_key else None, "asr_len": len(transcript),
        "caption_path": None, "caption_len": 0,
        "search_keyword": video.queries[0] if video.queries else None,
        "title": neutral(video.title), "desc": neutral(video.description),
        "language": asr.get("language") or video.language,
        "asr is repetive": None if repeated is None else repeated > settings.asr_max_repeated_ngrams,
        **judge_fields(verdict),
        "video_id": video.id, "url": video.url, "duration": video.duration_s,
        "search_keywords": list(video.queries), "subjects": list(video.subjects),
        "knowledge_points": list(video.points), "label": video.labels[0] if video.labels else None,
        "cover_url": video.cover_url, "relevance": verdict.get("relevance"), "repeated_ngram_ratio": repeated,
    }


def run(video: VideoRecord, store: Store, settings: Settings) -> StageResult:
    clips_key = video.artifact("keyframes", "clips")
    ocr_key = video.artifact("ocr", "ocr")
    if not clips_key or not ocr_key:
        raise MissingInput(f"{video.id}: assemble needs clips and OCR")
    entries = clip_entries(video.id, store.get_json(clips_key)["clips"], store.get_json(ocr_key), settings)
    left_out: dict = {}
    samples = [sample(group) for group in pack([entries], settings.sample_token_budget, settings.sample_max_images,
                                                left_out)]
    samples_key = store.put_bytes(artifact_key("assemble", "samples", video.id),
                                  "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples).encode())
    clip_level = {"token_num": sum(e["token_num"] for e in entries),
                  "conversations": entries + [end_of_video(video.id)]}
    clip_key = store.put_json(artifact_key("assemble", "clip_level", video.id), clip_level)
    meta_key = store.put_json(artifact_key("assemble", "video_meta", video.id), video_meta_data(video, store, settings))
    metrics = {"samples": len(samples), "clips": len(entries), "images": sum(s["image_num"] for s in samples),
               "tokens": clip_level["token_num"],
               "asr_tokens": sum(e["asr_token_num"] for e in entries),
               "ocr_tokens": sum(e["ocr_token_num"] for e in entries), **left_out}
    if not samples:
        return StageResult.rejected("nothing to assemble (no clip with a keyframe)", metrics)
    return StageResult.succeeded({"samples": samples_key, "clip_level": clip_key, "video_meta": meta_key}, metrics)
