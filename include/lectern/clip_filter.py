"""The clip-level visual-text filter: do a clip's keyframes show what its transcript talks about?

The paper captioned each clip with a video LLM and compared the captions with the transcript; Lectern compares
the keyframes with the transcript directly in a CLIP-style joint embedding (LECTERN_CLIP_FILTER_MODEL, any
transformers dual encoder with get_image_features / get_text_features). A clip whose best keyframe is less
similar than LECTERN_CLIP_FILTER_MIN_SIMILARITY loses its images and keeps its transcript as text only, as in the
paper (a talking head over a lecture's audio is still good text).
"""

from __future__ import annotations

import io
from typing import Callable, Sequence

from lectern import models


def embed_texts(processor, encoder, texts: Sequence[str], device: str):
    """L2-normalised text embeddings of a CLIP-style dual encoder (texts cut at its context length)."""
    import torch

    max_tokens = getattr(getattr(encoder.config, "text_config", encoder.config), "max_position_embeddings", 77)
    inputs = processor(text=list(texts), return_tensors="pt", padding=True, truncation=True,
                       max_length=max_tokens).to(device)
    return torch.nn.functional.normalize(encoder.get_text_features(**inputs), dim=-1)


def embed_images(processor, encoder, images: Sequence, device: str):
    """L2-normalised image embeddings (PIL images) of a CLIP-style dual encoder."""
    import torch

    pixels = processor(images=list(images), return_tensors="pt")["pixel_values"].to(device)
    return torch.nn.functional.normalize(encoder.get_image_features(pixel_values=pixels), dim=-1)


def clip_similarities(model: str, clips: Sequence[tuple[Sequence[str], str]], load: Callable[[str], bytes],
                      device: str = "cpu") -> list[float | None]:
    """For each (keyframe image keys, transcript) clip, the best cosine similarity of a keyframe with the
    transcript; None for a clip without keyframes or text (nothing to compare). `load` reads an image's JPEG: one
    clip's images are in memory at a time."""
    import torch
    from PIL import Image

    todo = [i for i, (frames, text) in enumerate(clips) if frames and text.strip()]
    result: list[float | None] = [None] * len(clips)
    if not todo:
        return result
    processor, encoder = models.image_text_model(model, device)
    with torch.inference_mode():
        text_vectors = embed_texts(processor, encoder, [clips[i][1] for i in todo], device)
        for row, i in enumerate(todo):
            images = [Image.open(io.BytesIO(load(key))).convert("RGB") for key in clips[i][0]]
            image_vectors = embed_images(processor, encoder, images, device)
            result[i] = round(float((image_vectors @ text_vectors[row]).max()), 4)
    return result
