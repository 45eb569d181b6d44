"""Packing: clips into samples in the published layout, shared by the assemble stage (a video's own samples) and
releases (every video's clips again, a sample continuing into the next video, as published). A clip record's
tokens are counted here too (LECTERN_TOKENIZER, else the embedding model's tokenizer), and text made safe for the
paper's loader (its image token)."""

from __future__ import annotations

import re
from typing import Iterable, Iterator

from lectern import models
from lectern.config import Settings

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


def position(vid: str, clip: str, time: float | None = None, ssim: float | None = None, start: float | None = None,
             end: float | None = None) -> dict:
    """A sample position's metadata, one schema for all (a keyframe's time and SSIM, a text's span; None where it
    has none), so that Arrow, and with it `datasets`, reads a release's JSONL as it is."""
    return {"vid": vid, "clip": clip, "time": time, "ssim": ssim, "start": start, "end": end, "end_of_video": False}


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
            metadata.append(position(entry["vid"], entry["clip_path"], time=moment, ssim=ssim))
        if entry["text"] or entry["ocr"]:  # neutral again: clip records assembled before version 4 may be packed
            images.append(None)
            texts.append(neutral(entry["text"]))
            text_ocr.append(neutral("\n".join(t for t in (entry["ocr"], entry["text"]) if t)))
            metadata.append(position(entry["vid"], entry["clip_path"], start=entry["start"], end=entry["end"]))
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
