"""The judge stage's work: run(video, store, settings) -> StageResult (what it does: its package's docstring)."""

from __future__ import annotations

from lectern import models
from lectern.config import Settings
from lectern.errors import MissingInput
from lectern.pipeline import artifact_key
from lectern.stage_types import StageResult, VideoRecord
from lectern.stages.judge import judging, llm, rewrite
from lectern.store import Store

MAX_TRANSCRIPT_CHARS = 4000  # for the embedding: all-MiniLM reads 256 tokens anyway


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
    asr_key = video.artifact("transcribe", "asr")
    if not asr_key:
        raise MissingInput(f"{video.id}: no transcript")
    asr = store.get_json(asr_key)
    transcript = " ".join(s["text"].strip() for s in asr["segments"])
    subject = video.subjects[0] if video.subjects else ""
    points = [f"{subject}: {p}" if subject else p for p in video.points] or [subject or video.title]
    scores = relevance(points, {"metadata": f"{video.title}. {video.description}",
                                "transcript": transcript[:MAX_TRANSCRIPT_CHARS]}, settings.embedding_model)
    best_point, best = max(((p, max(s.values(), default=0.0)) for p, s in scores.items()), key=lambda x: x[1])
    verdict = {"embedding_model": settings.embedding_model, "threshold": settings.judge_min_relevance,
               "scores": scores, "best_point": best_point, "relevance": best}
    metrics = {"relevance": best, "best_point": best_point}
    if best < settings.judge_min_relevance:
        key = store.put_json(artifact_key("judge", "judge", video.id), {**verdict, "decision": "rejected by relevance"})
        return StageResult.rejected(
            f"relevance {best:.2f} < {settings.judge_min_relevance:.2f} (best point {best_point!r})", metrics,
            artifacts={"judge": key})

    serving, usage = llm.Serving.from_settings(settings), llm.Usage()
    verdicts = judging.judge_transcript(
        settings.judge_models, best_point, video.title, transcript[: settings.llm_max_transcript_chars],
        min_score=settings.judge_min_score, serving=serving, max_new_tokens=settings.llm_max_new_tokens, usage=usage)
    drop = judging.combine(verdicts, settings.judge_policy)
    verdict.update(judging.metadata_fields(verdicts, settings.judge_policy), min_score=settings.judge_min_score)
    metrics.update({f"{v.field}_decision": v.decision for v in verdicts})
    metrics["unparseable_answers"] = sum(s is None for v in verdicts for s in v.scores.values())
    metrics.update(usage.metrics())
    verdict["llm_usage"] = usage.metrics()
    if drop:
        key = store.put_json(artifact_key("judge", "judge", video.id),
                             {**verdict, "decision": "rejected by LLM judges"})
        return StageResult.rejected(drop, metrics, artifacts={"judge": key})

    artifacts = {}
    if settings.rewrite_model:
        segments, counts = rewrite.refine_segments(
            asr["segments"], settings.rewrite_model, embedding_model=settings.embedding_model,
            length_ratio=settings.rewrite_length_ratio, min_similarity=settings.rewrite_min_similarity,
            serving=serving, usage=usage)
        artifacts["refined_asr"] = store.put_json(artifact_key("judge", "refined_asr", video.id), {
            "model": settings.rewrite_model, "min_similarity": settings.rewrite_min_similarity,
            "length_ratio": list(settings.rewrite_length_ratio), "counts": counts, "segments": segments})
        metrics.update(rewrite_used=counts[rewrite.REFINED], rewrite_kept_original=counts[rewrite.ORIGINAL],
                       **usage.metrics())
        verdict["llm_usage"] = usage.metrics()
    artifacts["judge"] = store.put_json(artifact_key("judge", "judge", video.id), {**verdict, "decision": "accepted"})
    return StageResult.succeeded(artifacts, metrics)
