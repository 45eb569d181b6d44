"""The pre-download filter on search metadata alone."""

import dataclasses

import pytest

from lectern.config import Settings
from lectern.discovery import _found
from lectern.stage_types import VideoRecord
from lectern.stages.download.prefilter import metadata_rejection


def video(**fields):
    base = {"id": "v1", "url": "http://x/v1", "title": "Photosynthesis explained", "description": "",
            "duration_s": 600.0}
    return VideoRecord(**{**base, **fields})


def settings(**env):
    return Settings.from_env({"LECTERN_HOME": "/tmp/unused", **env})


@pytest.mark.parametrize("fields,env,reason", [
    ({}, {}, None),
    ({"duration_s": None, "language": None, "license": None}, {}, None),  # unknown metadata never rejects
    ({"duration_s": 5.0}, {}, "duration 5.0s < 10s"),
    ({"duration_s": 4000.0}, {}, "duration 4000.0s > 3600s"),
    ({"live_status": "is_live"}, {}, "live stream (is_live)"),
    ({"live_status": "is_upcoming"}, {}, "live stream (is_upcoming)"),
    ({"live_status": "was_live"}, {}, None),  # a finished stream is an ordinary video
    ({"language": "de"}, {}, "metadata language de not in en"),
    ({"language": "en-US"}, {}, None),
    ({"language": "de"}, {"LECTERN_ALLOWED_LANGUAGES": "en,de"}, None),
    ({"title": "Фотосинтез: световые реакции"}, {}, "title language: 100% of its letters are not Latin (en expected)"),
    ({"title": "光合作用的光反应和暗反应"}, {}, "title language: 100% of its letters are not Latin (en expected)"),
    ({"title": "Фотосинтез: световые реакции"}, {"LECTERN_ALLOWED_LANGUAGES": "en,ru"}, None),
    ({"title": "Фотосинтез: световые реакции"}, {"LECTERN_ALLOWED_LANGUAGES": ""}, None),
    ({"title": "DNA 复制"}, {}, None),  # too few letters to judge
    ({"license": "Standard YouTube License"}, {"LECTERN_REQUIRED_LICENSE": "creative commons"},
     "license 'Standard YouTube License' does not match 'creative commons'"),
    ({"license": None}, {"LECTERN_REQUIRED_LICENSE": "creative commons"},
     "license 'unknown' does not match 'creative commons'"),
    ({"license": "Creative Commons Attribution license (reuse allowed)"},
     {"LECTERN_REQUIRED_LICENSE": "creative commons"}, None),
    ({"metadata_relevance": 0.09}, {}, "title/description relevance 0.09 < 0.15"),
    ({"metadata_relevance": 0.15}, {}, None),
    ({"metadata_relevance": 0.09}, {"LECTERN_METADATA_MIN_RELEVANCE": "0"}, None),  # off
    ({"metadata_relevance": None}, {}, None),  # not scored
    ({"metadata_llm_score": 2.0}, {"LECTERN_METADATA_JUDGE_MODEL": "m"}, "LLM metadata score 2 < 5"),
    ({"metadata_llm_score": 2.0}, {}, None),  # the metadata judge is off
    ({"metadata_llm_score": None}, {"LECTERN_METADATA_JUDGE_MODEL": "m"}, None),  # unparseable answer
])
def test_metadata_filter(fields, env, reason):
    assert metadata_rejection(video(**fields), settings(**env)) == reason


@pytest.mark.parametrize("fields,reason", [
    # the generic extractor's title for a plain video file is its name: unknown metadata, never rejects
    ({"url": "http://x/lectures/pasta_recipe.mp4", "title": "pasta_recipe"}, None),
    ({"url": "http://x/lectures/Pasta%20Recipe.mp4", "title": "Pasta Recipe"}, None),
    ({"url": "http://x/v/pasta_recipe.mp4", "title": "pasta_recipe.mp4"}, None),
    ({"id": "pasta_recipe", "title": "PASTA_RECIPE"}, None),
    ({"title": ""}, None),
    # a description is known text even where the title is not
    ({"url": "http://x/pasta.mp4", "title": "pasta", "description": "Boil the pasta"},
     "title/description relevance 0.09 < 0.15"),
    ({"url": "http://x/pasta.mp4", "title": "Tomato pasta"}, "title/description relevance 0.09 < 0.15"),
    # listed by hand (metadata_judged False): the user's choice, whatever its scores
    ({"metadata_judged": False}, None),
    ({"metadata_judged": False, "metadata_llm_score": 2.0}, None),
])
def test_relevance_judges_only_known_metadata_of_searched_videos(fields, reason):
    record = video(**{"metadata_relevance": 0.09, **fields})
    assert metadata_rejection(record, settings()) == reason
    assert metadata_rejection(dataclasses.replace(record, duration_s=5.0), settings()) == "duration 5.0s < 10s"


def test_search_metadata_carries_live_status_and_license():
    found = _found({"id": "abc", "title": "t", "live_status": "is_live", "license": "CC BY", "language": "en",
                    "ie_key": "Youtube"}, "ytsearch1:q")
    assert (found.live_status, found.license, found.language) == ("is_live", "CC BY", "en")
    assert found.url == "https://www.youtube.com/watch?v=abc"
    assert _found({"id": "x", "is_live": True}, "u").live_status == "is_live"


def test_the_resolution_filter_judges_a_known_height_only():
    from dataclasses import replace as replaced

    from lectern.config import Settings
    from lectern.stage_types import VideoRecord
    from lectern.stages.download.prefilter import height_reason, metadata_rejection

    internvid = Settings.from_env({"LECTERN_MIN_HEIGHT": "360", "LECTERN_MAX_HEIGHT": "720"})
    assert [height_reason(h, internvid) for h in (240, 360, 720, 1080, None)] == [
        "height 240p < 360p", None, None, "height 1080p > 720p", None]
    assert height_reason(144, Settings.from_env({})) is None  # off by default
    video = VideoRecord(id="v", url="https://example.org/v", title="Cells dividing under a microscope",
                        description="", duration_s=60.0, height=240)
    assert metadata_rejection(video, internvid) == "height 240p < 360p"
    assert metadata_rejection(replaced(video, height=None), internvid) is None
