"""judge: relevance of a video to the knowledge points that found it, from sentence embeddings.

The score is the best cosine similarity between a knowledge point ("subject: point") and either the video's
title + description or its transcript; a video scoring below LECTERN_JUDGE_MIN_RELEVANCE is rejected with
its score. (The paper's LLM judges come later; this is the first real relevance signal.)
"""

from __future__ import annotations

from lectern import models
from lectern.config import Settings
from lectern.errors import MissingInput
from lectern.stages import StageResult
from lectern.state.ops import VideoRecord
from lectern.store import Keys, Store

NAME = "judge"
VERSION = "1"
MAX_TRANSCRIPT_CHARS = 4000


def relevance(points: list[str], texts: dict[str, str], model: str) -> dict[str, dict[str, float]]:
    """point -> text name -> cosine similarity."""
    encoder = models.embedder(model)
    names = [name for name, text in texts.items() if text.strip()]
    vectors = encoder.encode(points + [texts[n] for n in names], normalize_embeddings=True)
    point_vectors, text_vectors = vectors[: len(points)], vectors[len(points):]
    return {
        point: {name: round(float(point_vectors[i] @ text_vectors[j]), 4) for j, name in enumerate(names)}
        for i, point in enumerate(points)
    }


def run(video: VideoRecord, store: Store, settings: Settings) -> StageResult:
    asr_key = video.artifacts.get("transcribe", {}).get("asr")
    if not asr_key:
        raise MissingInput(f"{video.id}: no transcript")
    asr = store.get_json(asr_key)
    transcript = " ".join(s["text"] for s in asr["segments"])[:MAX_TRANSCRIPT_CHARS]
    subject = video.subjects[0] if video.subjects else ""
    points = [f"{subject}: {p}" if subject else p for p in video.points] or [subject or video.title]
    scores = relevance(points, {"metadata": f"{video.title}. {video.description}", "transcript": transcript},
                       settings.embedding_model)
    best_point, best = max(((p, max(s.values(), default=0.0)) for p, s in scores.items()), key=lambda x: x[1])
    verdict = {"model": settings.embedding_model, "threshold": settings.judge_min_relevance, "scores": scores,
               "best_point": best_point, "relevance": best}
    key = store.put_json(Keys.judge(video.id), verdict)
    metrics = {"relevance": best, "best_point": best_point}
    if best < settings.judge_min_relevance:
        return StageResult.rejected(
            f"relevance {best:.2f} < {settings.judge_min_relevance:.2f} (best point {best_point!r})", metrics,
            artifacts={"judge": key})
    return StageResult.succeeded({"judge": key}, metrics)
