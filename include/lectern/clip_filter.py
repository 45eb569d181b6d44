"""The clip-level visual-text filter: do a clip's keyframes show what its transcript talks about?

The paper captioned each clip with a video LLM and compared the captions with the transcript; Lectern compares
the keyframes with the transcript directly in a CLIP-style joint embedding (LECTERN_CLIP_FILTER_MODEL, any
transformers dual encoder with get_image_features / get_text_features). A clip whose best keyframe is less
similar than LECTERN_CLIP_FILTER_MIN_SIMILARITY loses its images and keeps its transcript as text only, as in the
paper (a talking head over a lecture's audio is still good text).
"""

from __future__ import annotations

import io
from typing import Sequence

from lectern import models


def clip_similarities(model: str, clips: Sequence[tuple[Sequence[bytes], str]], device: str = "cpu") -> list[float | None]:
    """For each (keyframe JPEGs, transcript) clip, the best cosine similarity of a keyframe with the transcript;
    None for a clip without keyframes or text (nothing to compare)."""
    import torch
    from PIL import Image

    todo = [i for i, (frames, text) in enumerate(clips) if frames and text.strip()]
    result: list[float | None] = [None] * len(clips)
    if not todo:
        return result
    processor, encoder = models.image_text_model(model, device)
    max_tokens = getattr(getattr(encoder.config, "text_config", encoder.config), "max_position_embeddings", 77)
    with torch.inference_mode():
        texts = processor(text=[clips[i][1] for i in todo], return_tensors="pt", padding=True, truncation=True,
                          max_length=max_tokens).to(device)
        text_vectors = torch.nn.functional.normalize(encoder.get_text_features(**texts), dim=-1)
        for row, i in enumerate(todo):
            images = [Image.open(io.BytesIO(jpeg)).convert("RGB") for jpeg in clips[i][0]]
            pixels = processor(images=images, return_tensors="pt")["pixel_values"].to(device)
            image_vectors = torch.nn.functional.normalize(encoder.get_image_features(pixel_values=pixels), dim=-1)
            result[i] = round(float((image_vectors @ text_vectors[row]).max()), 4)
    return result
