"""assemble: interleave each clip's keyframes, OCR and ASR into samples in the published corpus format.

Within a clip, in time order: its keyframes (image positions), then one text position holding the ASR
(``texts``; an empty string where the clip has OCR but nothing was said) and OCR + ASR (``text_ocr_list``).
Clips are concatenated into samples up to LECTERN_SAMPLE_TOKEN_BUDGET tokens (each image counts
LECTERN_IMAGE_TOKENS, text counts real tokenizer tokens): ``image_num`` images, ``text_num`` ASR tokens,
``token_num`` = text_num + image tokens, as published. A sample needs an image (the paper's loader asserts one),
so a run of clips without keyframes that would close alone is counted and left out.

Also writes the clip-level file (each clip in the published ``multimodal_textbook_meta_data`` shape, closing with
its ``End of a Video`` record) and ``video_meta_data.json``. A release packs the clip-level records of all its
videos again (LECTERN_SAMPLE_PACKING=release: a sample may continue into the next video, as published); the
samples written here are this video's own (LECTERN_SAMPLE_PACKING=video).
"""

from __future__ import annotations

import json
import re
from typing import Iterable, Iterator

from lectern import models
from lectern.config import Settings
from lectern.errors import MissingInput
from lectern.stages import StageResult, StageSpec, VideoRecord
from lectern.store import Keys, Store

SPEC = StageSpec(
    name="assemble",
    # 3: fields in their published meaning (text_num, keyframe_ssim, extracted_frames, video meta keys); 4: the
    # loader's image token neutralised in text
    version="4",
    settings=("tokenizer", "embedding_model", "image_tokens", "sample_token_budget", "sample_max_images"),
    needs=(("download", "source"), ("transcribe", "asr"), ("judge", "judge"), ("keyframes", "clips"), ("ocr", "ocr")),
    produces=("samples", "clip_level", "video_meta"),
    timeout_s=900,
)

END_OF_VIDEO = "End of a Video"
# The training loader puts "<image>" at each image's place and asserts that the text holds as many as there are
# images: the same token said in a lecture or read on a slide is written "[image]" instead.
IMAGE_TOKEN = re.compile(r"<\s*image\s*>", re.IGNORECASE)


def neutral(text):
    """Text as it may go into a sample: the loader's image token made plain text (None stays None)."""
    return IMAGE_TOKEN.sub("[image]", text) if isinstance(text, str) else text


def tokenizer_name(settings: Settings) -> str:
    return settings.tokenizer or settings.embedding_model


def count_tokens(text: str, tokenizer: str) -> int:
    if not text:
        return 0
    return len(models.tokenizer(tokenizer).encode(text, add_special_tokens=False).ids)


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


def end_of_video(video_id: str) -> dict:
    return {"vid": END_OF_VIDEO, "clip_path": video_id, "image_tokens": 0, "token_num": 0}


def pack(videos: Iterable[list[dict]], budget: int, max_images: int | None = None,
         left_out: dict | None = None) -> Iterator[list[dict]]:
    """Consecutive clip records (of one video, or of several in turn) grouped into samples of at most `budget`
    tokens and `max_images` images (a single clip larger than either stands alone); each video's last clip is
    followed by its End-of-a-Video record, in whichever sample that clip lands. A group without an image is not a
    sample (the loader needs one): it is left out and counted in `left_out`."""
    left_out = left_out if left_out is not None else {}
    current: list[dict] = []

    def closed() -> list[dict] | None:
        group = list(current)
        current.clear()
        if any(e.get("keyframe_ssim") for e in group):
            return group
        if group:
            left_out["text_only_groups"] = left_out.get("text_only_groups", 0) + 1
            left_out["text_only_tokens"] = left_out.get("text_only_tokens", 0) + sum(e["token_num"] for e in group)
        return None

    for entries in videos:
        for i, entry in enumerate(entries):
            tokens = sum(e["token_num"] for e in current) + entry["token_num"]
            images = sum(len(e.get("keyframe_ssim", [])) for e in current) + len(entry["keyframe_ssim"])
            if current and (tokens > budget or (max_images is not None and images > max_images)):
                if (group := closed()) is not None:
                    yield group
            current.append(entry)
            if i == len(entries) - 1:
                current.append(end_of_video(entry["vid"]))
    if (group := closed()) is not None:
        yield group


def sample(group: list[dict]) -> dict:
    """One sample in the published layout from a group of clip records; the last position of a video carries
    ``"end_of_video": true`` in its metadata."""
    images, texts, text_ocr, metadata = [], [], [], []
    for entry in group:
        if entry["vid"] == END_OF_VIDEO:
            if metadata:
                metadata[-1]["end_of_video"] = True
            continue
        for key, moment, ssim in zip(entry["keyframe_ssim"], entry["frame_times"], entry["keyframe_ssim_scores"]):
            images.append(key)
            texts.append(None)
            text_ocr.append(None)
            metadata.append({"vid": entry["vid"], "clip": entry["clip_path"], "time": moment, "ssim": ssim})
        if entry["text"] or entry["ocr"]:  # neutral again: clip records assembled before version 4 may be packed
            images.append(None)
            texts.append(neutral(entry["text"]))
            text_ocr.append(neutral("\n".join(t for t in (entry["ocr"], entry["text"]) if t)))
            metadata.append({"vid": entry["vid"], "clip": entry["clip_path"], "start": entry["start"],
                             "end": entry["end"]})
    clips = [e for e in group if e["vid"] != END_OF_VIDEO]
    return {
        "images": images, "texts": texts, "text_ocr_list": text_ocr, "metadata": metadata,
        "image_num": sum(1 for i in images if i is not None),
        "text_num": sum(e["asr_token_num"] for e in clips),
        "token_num": sum(e["token_num"] for e in clips),
    }


def clip_level_record(group: list[dict]) -> dict:
    """A sample in the published clip-level file: its clip records and End-of-a-Video markers, and its tokens."""
    return {"token_num": sum(e["token_num"] for e in group), "conversations": group}


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
    probe = store.get_json(Keys.probe(video.id)) if store.exists(Keys.probe(video.id)) else {}
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
    samples_key = store.put_bytes(Keys.samples(video.id),
                                  "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples).encode())
    clip_level = {"token_num": sum(e["token_num"] for e in entries),
                  "conversations": entries + [end_of_video(video.id)]}
    clip_key = store.put_json(Keys.clip_level(video.id), clip_level)
    meta_key = store.put_json(Keys.video_meta(video.id), video_meta_data(video, store, settings))
    metrics = {"samples": len(samples), "clips": len(entries), "images": sum(s["image_num"] for s in samples),
               "tokens": clip_level["token_num"],
               "asr_tokens": sum(e["asr_token_num"] for e in entries),
               "ocr_tokens": sum(e["ocr_token_num"] for e in entries), **left_out}
    if not samples:
        return StageResult.rejected("nothing to assemble (no clip with a keyframe)", metrics)
    return StageResult.succeeded({"samples": samples_key, "clip_level": clip_key, "video_meta": meta_key}, metrics)
