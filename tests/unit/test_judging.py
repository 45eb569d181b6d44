"""LLM judge decisions and the two-judge policy."""

import pytest

from lectern.stages.judge import judging, llm


def verdict(name, **answers):
    return judging.decide(f"models/{name}", name, answers, min_score=5)


def test_prompts_ask_for_the_score_format_per_criterion():
    asked = judging.prompts("Biology: Mitosis", "Cell division", "Cells divide into two.")
    assert set(asked) == {"relevance", "knowledge_density", "transcription_quality"}
    assert all("###Score: N###" in p and "Cells divide into two." in p for p in asked.values())
    assert "Biology: Mitosis" in asked["relevance"]


def test_decide_accept_reject_abstain():
    accept = verdict("a", relevance="###Score: 8###", knowledge_density="###Score: 5###")
    reject = verdict("b", relevance="###Score: 8###", knowledge_density="dense ###Score: 2###")
    abstain = verdict("c", relevance="no idea", knowledge_density="")
    assert (accept.decision, reject.decision, abstain.decision) == ("accept", "reject", "abstain")
    assert reject.failed == ["knowledge_density"] and reject.scores["relevance"] == 8.0
    assert reject.describe() == "b rejected (knowledge_density 2)"
    assert abstain.scores == {"relevance": None, "knowledge_density": None}
    # An unparseable criterion is ignored; the parsed ones still decide.
    assert verdict("d", relevance="###Score: 1###", knowledge_density="garbage").decision == "reject"


@pytest.mark.parametrize("decisions,policy,dropped", [
    (("reject", "reject"), "all", True),
    (("reject", "accept"), "all", False),
    (("reject", "abstain"), "all", False),
    (("abstain", "abstain"), "all", False),
    (("reject", "accept"), "any", True),
    (("reject", "abstain"), "any", True),
    (("accept", "abstain"), "any", False),
    ((), "any", False),
])
def test_policy(decisions, policy, dropped):
    answers = {"reject": "###Score: 1###", "accept": "###Score: 9###", "abstain": "?"}
    verdicts = [verdict(f"j{i}", relevance=answers[d]) for i, d in enumerate(decisions)]
    reason = judging.combine(verdicts, policy)
    assert (reason is not None) == dropped
    if dropped:
        assert reason.startswith(f"LLM judges ({policy} must reject)") and "j0 rejected (relevance 1)" in reason


def test_metadata_fields_named_for_the_models():
    fields = judging.metadata_fields([verdict("qwen", relevance="###Score: 9###")], "all")
    assert fields["qwen_score"] == {"relevance": 9.0} and fields["qwen_decision"] == "accept"
    assert fields["llm_response"] == {"qwen": {"relevance": "###Score: 9###"}} and fields["judge_policy"] == "all"


def test_judge_transcript_with_tiny_models(tiny_models):
    verdicts = judging.judge_transcript([tiny_models["llm_scripted"], tiny_models["llm_random"]], "Biology: Mitosis",
                                        "Mitosis", "Cells divide.", min_score=5, serving=llm.Serving("cpu", 3),
                                        max_new_tokens=24)
    scripted, random_ = verdicts
    assert scripted.field == "llm_tiny_scripted" and scripted.decision == "accept"
    assert scripted.scores == dict.fromkeys(judging.CRITERIA, 7.0)
    assert random_.decision == "abstain" and set(random_.responses) == set(judging.CRITERIA)
    assert judging.combine(verdicts, "all") is None
    strict = judging.judge_transcript([tiny_models["llm_scripted"]], "p", "t", "x", min_score=8,
                                      serving=llm.Serving("cpu", 3), max_new_tokens=24)
    assert judging.combine(strict, "all").endswith("llm_tiny_scripted rejected (relevance 7, knowledge_density 7, "
                                                  "transcription_quality 7)")
