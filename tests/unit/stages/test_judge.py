"""Relevance from real sentence embeddings (the offline all-MiniLM-L6-v2 package)."""

import pytest

from lectern.stages import judge
from lectern.store import Keys
from tests.unit.stages.conftest import record


@pytest.mark.parametrize("title,expected", [("photosynthesis", "succeeded"), ("pasta_recipe", "rejected")])
def test_judge_scores_relevance(store, settings, title, expected):
    store.put_json(Keys.asr(title), {"segments": [{"text": "zq xv"}]})
    video = record(title, title=title, points=("Photosynthesis",),
                   artifacts={"transcribe": {"asr": Keys.asr(title)}})
    result = judge.run(video, store, settings)
    assert result.status == expected
    assert store.get_json(Keys.judge(title))["scores"]["Biology: Photosynthesis"]
    if expected == "rejected":
        assert result.reason.startswith("relevance ") and "< 0.30" in result.reason
