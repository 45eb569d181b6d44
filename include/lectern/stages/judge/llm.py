"""Chat LLMs through transformers: batched greedy generation and the ``###Score: N###`` answer format.

Used by the judges (judging.py), the transcript rewrite (rewrite.py), the metadata judge and taxonomy
generation. A model is a transformers id (downloaded where a network exists) or a local directory.
"""

from __future__ import annotations

import re
from typing import Sequence

from lectern import models

SCORE_PATTERN = re.compile(r"###\s*Score\s*:?\s*(-?\d+(?:\.\d+)?)\s*(?:/\s*10\s*)?###", re.IGNORECASE)
MAX_SCORE = 10.0


def parse_score(answer: str | None) -> float | None:
    """The score of an answer that ends its reasoning with ``###Score: N###`` (0-10); None when there is no such
    score, it is out of range, or the answer gives conflicting scores. Never raises."""
    if not answer:
        return None
    values = {float(match) for match in SCORE_PATTERN.findall(answer)}
    if len(values) != 1:
        return None
    (value,) = values
    return value if 0.0 <= value <= MAX_SCORE else None


def field_name(model: str) -> str:
    """A model's name as a metadata field prefix: ``Qwen/Qwen2.5-7B-Instruct`` -> ``qwen2_5_7b_instruct``."""
    base = model.rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^a-z0-9]+", "_", base.lower()).strip("_") or "model"


def field_names(models_: Sequence[str]) -> dict[str, str]:
    """model -> unique field prefix (two models with one base name get _2, _3 ...)."""
    names: dict[str, str] = {}
    for model in models_:
        name = field_name(model)
        candidate, n = name, 1
        while candidate in names.values():
            n += 1
            candidate = f"{name}_{n}"
        names[model] = candidate
    return names


def generate(model: str, prompts: Sequence[str], *, device: str = "auto", max_new_tokens: int = 256,
             batch_size: int = 8, system: str | None = None) -> list[str]:
    """Greedy answers to `prompts`, `batch_size` at a time, each prompt sent as one user turn of the model's chat
    template (or as plain text when the tokenizer has none)."""
    import torch

    if not prompts:
        return []
    tokenizer, lm = models.causal_lm(model, models.llm_device(device))
    texts = [_chat(tokenizer, prompt, system) for prompt in prompts]
    # Similar lengths in one batch waste less padding; answers go back in the caller's order.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    answers: list[str] = [""] * len(texts)
    for begin in range(0, len(order), batch_size):
        chunk = order[begin: begin + batch_size]
        encoded = tokenizer([texts[i] for i in chunk], return_tensors="pt", padding=True, add_special_tokens=False,
                            return_token_type_ids=False).to(lm.device)
        with torch.inference_mode():
            output = lm.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        new_tokens = output[:, encoded["input_ids"].shape[1]:]
        for i, tokens in zip(chunk, new_tokens):
            answers[i] = tokenizer.decode(tokens, skip_special_tokens=True).strip()
    return answers


def _chat(tokenizer, prompt: str, system: str | None) -> str:
    if not getattr(tokenizer, "chat_template", None):
        return f"{system}\n\n{prompt}\n" if system else prompt
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
