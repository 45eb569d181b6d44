"""Images to text with a vision-language model (transformers): OCR (LECTERN_OCR_ENGINE=vlm) and clip captions
(the caption stage) both ask one here."""

from __future__ import annotations

from typing import Sequence


def describe_images(images: Sequence, model: str, prompt: str | None, device: str, batch_size: int,
                    max_new_tokens: int = 512) -> list[str]:
    """The model's text for each image (a path or a PIL image), `batch_size` at a time, greedy. A chat model gets
    `prompt` with the image through its chat template; an image-to-text model (TrOCR-, BLIP- or ViT-GPT2-style) gets
    the image alone."""
    import torch
    from PIL import Image

    from lectern import models

    processor, vlm = models.image_to_text(model, models.llm_device(device))
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
