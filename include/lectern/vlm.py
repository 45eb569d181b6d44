"""Images to text with a vision-language model: OCR (LECTERN_OCR_ENGINE=vlm) and clip captions (the caption stage)
both ask one here, in this process through transformers, or behind an OpenAI-compatible endpoint (``openai:<model>``,
lectern.stages.judge.llm: each image sent inline as a JPEG data URL with the question)."""

from __future__ import annotations

import base64
import io
from typing import Sequence

from lectern.stages.judge import llm

ENDPOINT_QUESTION = "Describe this image in one sentence."  # an endpoint's chat model needs a question


def describe_images(images: Sequence, model: str, prompt: str | None, serving: llm.Serving,
                    max_new_tokens: int = 512, usage: llm.Usage | None = None) -> list[str]:
    """The model's text for each image (a path or a PIL image), greedy: `serving.batch_size` at a time in this
    process, or `serving.concurrency` requests at a time to an endpoint. A chat model gets `prompt` with the image
    through its chat template; an image-to-text model (TrOCR-, BLIP- or ViT-GPT2-style) gets the image alone."""
    if llm.is_endpoint(model):
        contents = [[{"type": "image_url", "image_url": {"url": _data_url(image)}},
                     {"type": "text", "text": prompt or ENDPOINT_QUESTION}] for image in images]
        return llm.ask_endpoint(model, contents, serving, max_new_tokens=max_new_tokens, usage=usage)
    return _describe_locally(images, model, prompt, serving, max_new_tokens)


def _data_url(image) -> str:
    from PIL import Image

    picture = image if isinstance(image, Image.Image) else Image.open(image)
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _describe_locally(images: Sequence, model: str, prompt: str | None, serving: llm.Serving,
                      max_new_tokens: int) -> list[str]:
    import torch
    from PIL import Image

    from lectern import models

    processor, vlm = models.image_to_text(model, models.llm_device(serving.device))
    batch_size = serving.batch_size
    texts: list[str] = []
    for begin in range(0, len(images), batch_size):
        batch = [image.convert("RGB") if isinstance(image, Image.Image) else Image.open(image).convert("RGB")
                 for image in images[begin: begin + batch_size]]
        if prompt:
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
            chat = processor.apply_chat_template(messages, add_generation_prompt=True)
            inputs = processor(images=batch, text=[chat] * len(batch), return_tensors="pt", padding=True)
        else:
            inputs = processor(images=batch, return_tensors="pt")
        inputs = inputs.to(vlm.device)
        with torch.inference_mode():
            output = vlm.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        if "input_ids" in inputs and not vlm.config.is_encoder_decoder:
            output = output[:, inputs["input_ids"].shape[1]:]  # a decoder-only model repeats its prompt
        texts += [text.strip() for text in processor.batch_decode(output, skip_special_tokens=True)]
    return texts
