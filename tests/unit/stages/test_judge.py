"""The judge stage: real sentence-embedding relevance (the offline all-MiniLM-L6-v2 package), then the two tiny
LLM judges through real generation, then the rewrite with its guard."""

import dataclasses

import pytest

from lectern.pipeline import artifact_key
from lectern.stages.judge import run as judge
from tests.unit.stages.conftest import record

SEGMENTS = [{"start": 0.0, "end": 5.0, "text": "Photosynthesis turns light into chemical energy."},
            {"start": 5.0, "end": 9.0, "text": "The transcript suits the request. Score seven."}]


def transcribed(store, title, segments=SEGMENTS):
    store.put_json(artifact_key("transcribe", "asr", title), {"segments": segments})
    return record(title, title=title, points=("Photosynthesis",),
                  artifacts={"transcribe": {"asr": artifact_key("transcribe", "asr", title)}})


@pytest.mark.parametrize("title,expected", [("photosynthesis", "succeeded"), ("pasta_recipe", "rejected")])
def test_judge_scores_relevance(store, settings, title, expected):
    result = judge.run(transcribed(store, title, [{"start": 0, "end": 1, "text": "zq xv"}]), store, settings)
    assert result.status == expected
    verdict = store.get_json(artifact_key("judge", "judge", title))
    assert verdict["scores"]["Biology: Photosynthesis"]
    if expected == "rejected":
        assert result.reason.startswith("relevance ") and "< 0.30" in result.reason
        assert "llm_response" not in verdict  # no LLM time on a video the embeddings already rejected


def test_llm_judges_and_rewrite_are_recorded(store, settings):
    result = judge.run(transcribed(store, "photosynthesis"), store, settings)
    assert result.status == "succeeded", result.reason
    verdict = store.get_json(result.artifacts["judge"])
    assert verdict["decision"] == "accepted" and verdict["judge_policy"] == "all"
    assert verdict["llm_tiny_scripted_score"] == {"relevance": 7.0, "knowledge_density": 7.0,
                                                  "transcription_quality": 7.0}
    assert verdict["llm_tiny_random_decision"] == "abstain"  # its babble is kept, unparsed
    assert set(verdict["llm_response"]["llm_tiny_random"]) == {"relevance", "knowledge_density",
                                                              "transcription_quality"}
    assert result.metrics["unparseable_answers"] == 3
    refined = store.get_json(result.artifacts["refined_asr"])
    assert [s["used"] for s in refined["segments"]] == ["original", "refined"]
    assert refined["counts"] == {"refined": 1, "original": 1}
    assert (result.metrics["rewrite_used"], result.metrics["rewrite_kept_original"]) == (1, 1)


def test_llm_judges_drop_under_policy(store, settings):
    strict = dataclasses.replace(settings, judge_min_score=8.0)  # the scripted judge's 7s now reject
    result = judge.run(transcribed(store, "photosynthesis"), store, strict)
    assert result.status == "succeeded"  # policy all: the random judge abstained, so not every judge rejected
    result = judge.run(transcribed(store, "photosynthesis"), store, dataclasses.replace(strict, judge_policy="any"))
    assert result.status == "rejected"
    assert result.reason.startswith("LLM judges (any must reject): llm_tiny_scripted rejected (relevance 7")
    assert "refined_asr" not in result.artifacts
    assert store.get_json(result.artifacts["judge"])["decision"] == "rejected by LLM judges"


def test_no_llm_configured_keeps_embedding_only(store, settings):
    bare = dataclasses.replace(settings, judge_models=(), rewrite_model=None)
    result = judge.run(transcribed(store, "photosynthesis"), store, bare)
    assert result.status == "succeeded" and set(result.artifacts) == {"judge"}
    assert store.get_json(result.artifacts["judge"])["llm_response"] == {}
