"""Chat LLMs: batched greedy generation and the ``###Score: N###`` answer format.

Used by the judges (judging.py), the transcript rewrite (rewrite.py), the metadata judge, taxonomy generation and
caption summaries. A model is either
- a transformers id (downloaded where a network exists) or a local directory, run in this process (the embedded
  default), or
- ``openai:<model>``: a model behind an OpenAI-compatible endpoint (LECTERN_LLM_BASE_URL: vLLM, SGLang, TGI,
  llama.cpp's server, Ollama, a hosted API), asked through the ``openai`` client, LECTERN_LLM_CONCURRENCY requests
  at a time. ``openai:<model>@<url>`` names another endpoint for one model (two judges on two servers).
A timeout, 408, 409, 429 or 5xx is retried with backoff; if it persists the call raises LLMUnavailable
(transient: the stage is retried later, nothing recorded). Any other 4xx raises LLMRequestRejected (permanent)
with the server's message. Token usage is counted either way (``Usage``).
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

from lectern import models
from lectern.errors import PermanentError, TransientError

ENDPOINT_PREFIX = "openai:"


class LLMUnavailable(TransientError):
    """The LLM endpoint timed out, was unreachable or answered 408/409/429/5xx on every try."""


class LLMRequestRejected(PermanentError):
    """The LLM endpoint refused the request for good (a 4xx other than 408/409/429): its message says why."""


@dataclass(frozen=True)
class Serving:
    """How LLM calls run: the device and batch of the in-process backend, and the endpoint's address, key,
    concurrency, timeout and retries (``from_settings``)."""

    device: str = "auto"
    batch_size: int = 8
    base_url: str | None = None
    api_key: str | None = None
    concurrency: int = 8
    timeout_s: float = 300.0
    retries: int = 5

    @classmethod
    def from_settings(cls, settings) -> "Serving":
        return cls(settings.llm_device, settings.llm_batch_size, settings.llm_base_url, settings.llm_api_key,
                   settings.llm_concurrency, settings.llm_timeout_s, settings.llm_retries)


@dataclass
class Usage:
    """Requests (prompts answered) and tokens, added up over calls: what a video cost."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, prompt_tokens: int, completion_tokens: int) -> None:
        self.requests += 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens

    def metrics(self) -> dict[str, int]:
        return {"llm_requests": self.requests, "llm_prompt_tokens": self.prompt_tokens,
                "llm_completion_tokens": self.completion_tokens}


@dataclass(frozen=True)
class Endpoint:
    model: str
    base_url: str
    api_key: str | None = field(default=None, repr=False)


def is_endpoint(model: str | None) -> bool:
    """Whether a model reference names a model behind an endpoint (``openai:<model>[@<url>]``)."""
    return bool(model) and model.startswith(ENDPOINT_PREFIX)


def _reference(model: str) -> tuple[str, str]:
    """An endpoint reference's model name and its own URL ("" for LECTERN_LLM_BASE_URL's)."""
    name, _, url = model[len(ENDPOINT_PREFIX):].partition("@")
    return name, url


def endpoint(model: str, serving: Serving) -> Endpoint | None:
    """The endpoint an ``openai:`` model reference names (None for a transformers model)."""
    if not is_endpoint(model):
        return None
    name, url = _reference(model)
    if not name:
        raise PermanentError(f"LLM {model!r}: no model name after {ENDPOINT_PREFIX!r}")
    if url:  # the key is for LECTERN_LLM_BASE_URL's server only: never sent elsewhere
        return Endpoint(name, url.rstrip("/"), serving.api_key if url.rstrip("/") == serving.base_url else None)
    if not serving.base_url:
        raise PermanentError(f"LLM {model!r} needs an endpoint: set LECTERN_LLM_BASE_URL (or write {model}@<url>)")
    return Endpoint(name, serving.base_url, serving.api_key)


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
    """A model's name as a metadata field prefix: ``Qwen/Qwen2.5-7B-Instruct`` -> ``qwen2_5_7b_instruct``, and
    ``openai:deepseek-chat@https://api.deepseek.com/v1`` -> ``deepseek_chat``."""
    if is_endpoint(model):
        model = _reference(model)[0]
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


def ask_endpoint(model: str, contents: Sequence[list[dict]], serving: Serving, *, max_new_tokens: int,
                 usage: Usage | None = None) -> list[str]:
    """The answers of the endpoint an ``openai:`` model names to user turns given as content parts (text and
    ``image_url`` parts: a vision-language model's question about an image)."""
    remote = endpoint(model, serving)
    if remote is None:
        raise ValueError(f"{model!r} is not an endpoint model (openai:<model>)")
    if not contents:
        return []
    return _generate_remote(remote, contents, serving, max_new_tokens, None, usage if usage is not None else Usage())


def generate(model: str, prompts: Sequence[str], serving: Serving = Serving(), *, max_new_tokens: int = 256,
             system: str | None = None, usage: Usage | None = None) -> list[str]:
    """Greedy answers to `prompts`, each prompt sent as one user turn of the model's chat template (or as plain
    text when the tokenizer has none): through the endpoint an ``openai:`` model names, else in this process,
    `serving.batch_size` at a time. Tokens are added to `usage`."""
    if not prompts:
        return []
    usage = usage if usage is not None else Usage()
    remote = endpoint(model, serving)
    if remote is not None:
        return _generate_remote(remote, prompts, serving, max_new_tokens, system, usage)
    return _generate_local(model, prompts, serving, max_new_tokens, system, usage)


def _generate_local(model: str, prompts: Sequence[str], serving: Serving, max_new_tokens: int, system: str | None,
                    usage: Usage) -> list[str]:
    import torch

    tokenizer, lm = models.causal_lm(model, models.llm_device(serving.device))
    texts = [_chat(tokenizer, prompt, system) for prompt in prompts]
    # Similar lengths in one batch waste less padding; answers go back in the caller's order.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    answers: list[str] = [""] * len(texts)
    for begin in range(0, len(order), serving.batch_size):
        chunk = order[begin: begin + serving.batch_size]
        encoded = tokenizer([texts[i] for i in chunk], return_tensors="pt", padding=True, add_special_tokens=False,
                            return_token_type_ids=False).to(lm.device)
        with torch.inference_mode():
            output = lm.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        new_tokens = output[:, encoded["input_ids"].shape[1]:]
        for i, tokens, mask in zip(chunk, new_tokens, encoded["attention_mask"]):
            answers[i] = tokenizer.decode(tokens, skip_special_tokens=True).strip()
            usage.add(int(mask.sum()), int((tokens != tokenizer.pad_token_id).sum()))
    return answers


@lru_cache(maxsize=8)
def _client(base_url: str, api_key: str | None, timeout_s: float, retries: int):
    import openai

    # vLLM and llama.cpp's server take any key when they were started without one; the client needs a value.
    return openai.OpenAI(base_url=base_url, api_key=api_key or "EMPTY", timeout=timeout_s, max_retries=retries)


def _generate_remote(remote: Endpoint, prompts: Sequence[str | list[dict]], serving: Serving, max_new_tokens: int,
                     system: str | None, usage: Usage) -> list[str]:
    """One chat completion a prompt (its text, or its content parts: an image and a question), `serving.concurrency`
    at a time; the client retries (exponential backoff, Retry-After honoured), then the failure is classified."""
    import openai

    client = _client(remote.base_url, remote.api_key, serving.timeout_s, serving.retries)

    def ask(prompt: str | list[dict]):
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        return client.chat.completions.create(model=remote.model, messages=messages, max_tokens=max_new_tokens,
                                              temperature=0.0)

    where = f"LLM endpoint {remote.base_url} (model {remote.model})"
    try:
        with ThreadPoolExecutor(min(serving.concurrency, len(prompts)), thread_name_prefix="lectern-llm") as pool:
            replies = list(pool.map(ask, prompts))
    except (openai.APITimeoutError, openai.APIConnectionError) as exc:
        raise LLMUnavailable(f"{where}: {type(exc).__name__} after {serving.retries + 1} tries") from exc
    except openai.APIStatusError as exc:
        message = _server_message(exc)
        if exc.status_code in (408, 409, 429) or exc.status_code >= 500:
            raise LLMUnavailable(f"{where}: HTTP {exc.status_code} after {serving.retries + 1} tries: {message}") \
                from exc
        raise LLMRequestRejected(f"{where} refused the request: HTTP {exc.status_code}: {message}") from exc
    answers = []
    for reply in replies:
        answers.append(((reply.choices[0].message.content or "") if reply.choices else "").strip())
        tokens = reply.usage
        usage.add(tokens.prompt_tokens if tokens else 0, tokens.completion_tokens if tokens else 0)
    return answers


def _server_message(exc) -> str:
    """The error message the server gave (OpenAI's {"error": {"message": ...}}, or its body), one line."""
    body = exc.body
    if isinstance(body, dict):
        body = body.get("error", body)
        body = body.get("message", body) if isinstance(body, dict) else body
    return " ".join(str(body or exc.message).split())[:500]


def _chat(tokenizer, prompt: str, system: str | None) -> str:
    if not getattr(tokenizer, "chat_template", None):
        return f"{system}\n\n{prompt}\n" if system else prompt
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
