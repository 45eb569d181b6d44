"""The transcript rewrite (the paper's ``refined_asr``): an LLM fixes each ASR segment's recognition errors,
punctuation and filler words, and a guard keeps the original wherever the rewrite drifted.

A rewrite is kept only if its word count is within LECTERN_REWRITE_LENGTH_RATIO of the original's and its
sentence embedding is at least LECTERN_REWRITE_MIN_SIMILARITY similar to the original's. Segments keep their
times, so clips and keyframes still line up; each segment records which text was used and why.
"""

from __future__ import annotations

import re
from typing import Sequence

from lectern import models
from lectern.stages.judge import llm

SYSTEM = "You correct automatic speech recognition transcripts of lectures."
PROMPT = (
    "Rewrite this lecture transcript excerpt: fix recognition errors, punctuation and capitalisation, and remove "
    "filler words and repetitions. Keep the speaker's meaning and wording otherwise; add nothing. Answer with the "
    "rewritten text only.\n\nExcerpt:\n{text}"
)
REFINED, ORIGINAL = "refined", "original"


def clean(answer: str) -> str:
    """The rewritten text without the wrapping some models add (a label, quotes)."""
    text = re.sub(r"^\s*(rewritten( text| excerpt)?|excerpt)\s*:\s*", "", answer.strip(), flags=re.IGNORECASE)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'“”":
        text = text[1:-1]
    return " ".join(text.split())


def drift(original: str, rewrite: str, similarity: float | None, length_ratio: tuple[float, float],
          min_similarity: float) -> str | None:
    """Why the rewrite drifted from the original (so the original is kept), or None."""
    if not rewrite:
        return "empty rewrite"
    words_before, words_after = len(original.split()), len(rewrite.split())
    ratio = words_after / max(1, words_before)
    low, high = length_ratio
    if not low <= ratio <= high:
        return f"length ratio {ratio:.2f} outside {low:g}-{high:g}"
    if similarity is not None and similarity < min_similarity:
        return f"similarity {similarity:.2f} < {min_similarity:.2f}"
    return None


def similarities(pairs: Sequence[tuple[str, str]], embedding_model: str) -> list[float]:
    if not pairs:
        return []
    encoder = models.embedder(embedding_model)
    vectors = encoder.encode([text for pair in pairs for text in pair], normalize_embeddings=True)
    return [round(float(vectors[2 * i] @ vectors[2 * i + 1]), 4) for i in range(len(pairs))]


def refine_segments(segments: list[dict], model: str, *, embedding_model: str, length_ratio: tuple[float, float],
                    min_similarity: float, serving: llm.Serving,
                    usage: llm.Usage | None = None) -> tuple[list[dict], dict]:
    """Segments with ``text`` (the text used), ``asr`` (the original), ``refined`` (the LLM's answer),
    ``used`` and, where the original was kept, ``kept_because``; plus counts."""
    todo = [i for i, s in enumerate(segments) if s.get("text", "").strip()]
    longest = max((len(segments[i]["text"]) for i in todo), default=0)
    # About 4 characters a token: twice the longest segment is room for any faithful rewrite.
    answers = llm.generate(model, [PROMPT.format(text=segments[i]["text"].strip()) for i in todo], serving,
                           max_new_tokens=max(16, longest // 2 + 16), system=SYSTEM, usage=usage)
    rewrites = {i: clean(answer) for i, answer in zip(todo, answers)}
    candidates = [i for i in todo if rewrites[i]]
    scores = dict(zip(candidates, similarities([(segments[i]["text"].strip(), rewrites[i]) for i in candidates],
                                               embedding_model)))
    refined, counts = [], {REFINED: 0, ORIGINAL: 0}
    for i, segment in enumerate(segments):
        original = segment.get("text", "").strip()
        entry = {**segment, "asr": original, "refined": rewrites.get(i), "similarity": scores.get(i)}
        why = drift(original, rewrites.get(i, ""), scores.get(i), length_ratio, min_similarity) if original else None
        if original and why is None:
            entry.update(text=rewrites[i], used=REFINED)
        else:
            entry.update(text=original, used=ORIGINAL, kept_because=why or "nothing to rewrite")
        counts[entry["used"]] += 1
        refined.append(entry)
    return refined, counts
