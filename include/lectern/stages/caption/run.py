"""The caption stage's work: run(video, store, settings) -> StageResult (what it does: its package's docstring)."""

from __future__ import annotations

import re
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from lectern.config import Settings
from lectern.errors import MissingInput
from lectern.pipeline import artifact_key
from lectern.stage_types import StageResult, VideoRecord, without_timings
from lectern.store import Store

SYSTEM = "You write short, factual captions of video clips."


def frame_times(start: float, end: float, count: int) -> tuple[float, list[float]]:
    """A clip's middle, and `count` moments spread evenly over it (the middle of each of `count` equal parts)."""
    step = (end - start) / count
    return round((start + end) / 2, 3), [round(start + step * (k + 0.5), 3) for k in range(count)]


def summary_prompt(coarse: str, fine: list[str]) -> str:
    frames = "\n".join(f"{n}. {caption}" for n, caption in enumerate(fine, start=1))
    return (f"Captions of frames of one video clip, in order:\n{frames}\nCaption of its middle frame: {coarse}\n"
            "Write one sentence that describes the whole clip. Answer with the sentence only.")


def clean_caption(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def run(video: VideoRecord, store: Store, settings: Settings) -> StageResult:
    from PIL import Image

    from lectern.stages.judge import llm
    from lectern.stages.keyframes import decoding
    from lectern.vlm import describe_images

    clips_key = video.artifact("keyframes", "clips")
    source_key = video.artifact("download", "source")
    if not clips_key or not source_key:
        raise MissingInput(f"{video.id}: captions need the source video and its clips")
    clips = store.get_json(clips_key)["clips"]
    started = time.monotonic()
    plan = [frame_times(clip["start"], clip["end"], settings.caption_frames) for clip in clips]
    wanted = sorted({t for middle, spread in plan for t in (middle, *spread)})
    with store.local_path(source_key) as path:
        pictures = decoding.frames_at(str(path), wanted)
    images = {t: Image.fromarray(pictures[t]) for t in wanted if t in pictures}
    order = list(images)
    usage = llm.Usage()
    captions = dict(zip(order, describe_images([images[t] for t in order], settings.caption_model,
                                               settings.caption_prompt, llm.Serving.from_settings(settings),
                                               settings.caption_max_new_tokens, usage)))
    coarse = [clean_caption(captions.get(middle, "")) for middle, _ in plan]
    fine = [[clean_caption(captions[t]) for t in spread if t in captions] for _, spread in plan]
    if settings.caption_summary_model:
        summaries = llm.generate(settings.caption_summary_model, [summary_prompt(c, f) for c, f in zip(coarse, fine)],
                                 llm.Serving.from_settings(settings), max_new_tokens=settings.caption_max_new_tokens,
                                 system=SYSTEM, usage=usage)
        final = [clean_caption(s) or c for s, c in zip(summaries, coarse)]
    else:
        final = coarse
    similarity, aesthetic = score_clips(final, [[images[t] for t in spread if t in images] for _, spread in plan],
                                        settings)
    documents = []
    for i, clip in enumerate(clips):
        why = filtered(similarity[i], aesthetic[i], settings)
        documents.append({
            "index": clip["index"], "start": clip["start"], "end": clip["end"], "caption": final[i],
            "middle_frame_caption": coarse[i], "frame_captions": fine[i], "frame_times": plan[i][1],
            "clip_similarity": similarity[i], "aesthetic": aesthetic[i], "asr": clip.get("asr") or None,
            "kept": why is None, "filtered": why,
        })
    seconds = time.monotonic() - started
    kept = sum(d["kept"] for d in documents)
    scored = [s for s in similarity if s is not None]
    metrics = {"clips": len(documents), "clips_kept": kept, "frames_captioned": len(images),
               "mean_clip_similarity": round(float(np.mean(scored)), 4) if scored else None,
               "seconds": round(seconds, 3), **(usage.metrics() if usage.requests else {})}
    key = store.put_json(artifact_key("caption", "captions", video.id), {"video_id": video.id, "clips": documents,
                                                    "metrics": without_timings(metrics)})
    if not kept:
        reasons = sorted({d["filtered"] for d in documents if d["filtered"]})
        return StageResult.rejected(f"no clip passed the caption filters: {'; '.join(reasons) or 'no clips'}",
                                    metrics, {"captions": key})
    return StageResult.succeeded({"captions": key}, metrics)


def filtered(similarity: float | None, aesthetic: float | None, settings: Settings) -> str | None:
    """Why a clip is left out of the pairs, or None."""
    if settings.caption_min_similarity is not None and similarity is not None \
            and similarity < settings.caption_min_similarity:
        return f"clip similarity {similarity:.3f} < {settings.caption_min_similarity:g}"
    if settings.caption_min_aesthetic is not None and aesthetic is not None \
            and aesthetic < settings.caption_min_aesthetic:
        return f"aesthetic {aesthetic:.2f} < {settings.caption_min_aesthetic:g}"
    return None


def score_clips(captions: list[str], clip_images: list[list], settings: Settings
                ) -> tuple[list[float | None], list[float | None]]:
    """Per clip: the mean cosine similarity of its caption with its frames, and the mean aesthetic score of its
    frames (None without frames, or without an aesthetic head)."""
    import torch

    from lectern import models
    from lectern.clip_filter import embed_images, embed_texts

    device = models.llm_device(settings.llm_device)
    processor, encoder = models.image_text_model(settings.caption_score_model, device)
    head = aesthetic_head(settings.aesthetic_head) if settings.aesthetic_head else None
    similarity: list[float | None] = []
    aesthetic: list[float | None] = []
    with torch.inference_mode():
        for caption, images in zip(captions, clip_images):
            if not images:
                similarity.append(None)
                aesthetic.append(None)
                continue
            image_vectors = embed_images(processor, encoder, images, device)
            if caption:
                text_vector = embed_texts(processor, encoder, [caption], device)[0]
                similarity.append(round(float((image_vectors @ text_vector).mean()), 4))
            else:
                similarity.append(None)
            aesthetic.append(round(float(np.mean(head(image_vectors.float().cpu().numpy()))), 4) if head else None)
    return similarity, aesthetic


@lru_cache(maxsize=2)
def aesthetic_head(path: str):
    """A LAION improved-aesthetic-predictor (an MLP of linear layers, with dropout only between them) as a
    function of L2-normalised image embeddings: its state dict's `*.weight`/`*.bias` pairs applied in order."""
    if Path(path).suffix == ".safetensors":
        from safetensors.numpy import load_file

        state = load_file(path)
    else:
        import torch

        state = {k: v.float().numpy() for k, v in torch.load(path, map_location="cpu", weights_only=True).items()}
    prefixes = sorted({name.rsplit(".", 1)[0] for name in state if name.endswith(".weight")},
                      key=lambda p: [int(part) if part.isdigit() else part for part in p.split(".")])
    if not prefixes:
        raise ValueError(f"{path}: no linear layers (no '*.weight' tensors)")
    layers = [(state[f"{p}.weight"], state.get(f"{p}.bias")) for p in prefixes]

    def predict(embeddings: np.ndarray) -> np.ndarray:
        x = embeddings
        for weight, bias in layers:
            x = x @ weight.T + (bias if bias is not None else 0.0)
        return x.reshape(len(embeddings), -1)[:, 0]

    return predict
