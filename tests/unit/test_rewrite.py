"""The transcript rewrite and its drift guard (real sentence embeddings, real generation)."""

import pytest

from lectern.stages.judge import llm, rewrite

EMBEDDINGS = "sentence-transformers/all-MiniLM-L6-v2"
ORIGINAL = "so um photosynthesis is how plants turn light in to chemical energy"


@pytest.mark.parametrize("answer,expected", [
    ('"Photosynthesis turns light into energy."', "Photosynthesis turns light into energy."),
    ("Rewritten text: Plants  make\nsugar.", "Plants make sugar."),
    ("  plain  ", "plain"),
])
def test_clean(answer, expected):
    assert rewrite.clean(answer) == expected


def test_guard_keeps_faithful_rewrites_and_catches_drift():
    faithful = "Photosynthesis is how plants turn light into chemical energy."
    off_topic = "Bring a large pot of salted water to a boil and add the pasta."
    ratio = (0.6, 1.6)
    sims = rewrite.similarities([(ORIGINAL, faithful), (ORIGINAL, off_topic)], EMBEDDINGS)
    assert sims[0] > 0.8 > sims[1]
    assert rewrite.drift(ORIGINAL, faithful, sims[0], ratio, 0.8) is None
    assert rewrite.drift(ORIGINAL, off_topic, sims[1], ratio, 0.8).startswith("similarity ")
    assert rewrite.drift(ORIGINAL, "Photosynthesis.", 0.9, ratio, 0.8) == "length ratio 0.08 outside 0.6-1.6"
    assert rewrite.drift(ORIGINAL, "", None, ratio, 0.8) == "empty rewrite"


def test_refine_segments_records_which_text_is_used(tiny_models):
    segments = [{"start": 0.0, "end": 4.0, "text": ORIGINAL}, {"start": 4.0, "end": 5.0, "text": "  "},
                {"start": 5.0, "end": 9.0, "text": "The transcript suits the request. Score seven."}]
    refined, counts = rewrite.refine_segments(segments, tiny_models["llm_scripted"], embedding_model=EMBEDDINGS,
                                              length_ratio=(0.6, 1.6), min_similarity=0.8,
                                              serving=llm.Serving("cpu", 2))
    # The scripted model answers "The transcript suits the request. ###Score: 7###" to anything.
    assert [s["start"] for s in refined] == [0.0, 4.0, 5.0]  # times are kept
    assert refined[0]["used"] == "original" and refined[0]["text"] == ORIGINAL
    assert refined[0]["kept_because"].startswith(("similarity", "length ratio"))
    assert refined[1]["used"] == "original" and refined[1]["kept_because"] == "nothing to rewrite"
    assert refined[2]["used"] == "refined" and refined[2]["text"] == "The transcript suits the request. ###Score: 7###"
    assert refined[2]["asr"] == segments[2]["text"] and refined[2]["similarity"] >= 0.8
    assert counts == {"refined": 1, "original": 2}
