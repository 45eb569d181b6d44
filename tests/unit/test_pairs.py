"""The pairs recipe end to end on the runner (real yt-dlp downloads from the loopback corpus, the tiny models):
a manifest subject whose recipe is pairs goes download -> keyframes (clips at scene changes, no transcript) ->
caption, and its release loads with `datasets` and as a PyTorch Dataset."""

import json

import pytest

from lectern.config import Settings
from lectern.phases import prepare_discovery
from lectern.pipeline import RECIPES, next_stage, upstream_phase
from lectern.release import build_pairs_release
from lectern.runner import EXIT_OK, run_stage
from lectern.state.db import session_scope
from lectern.state.ops import stage_rows
from lectern.store import Keys, store_from_settings
from lectern.training import ReleaseDataset
from tests.conftest import model_environment

VIDEOS = {"photosynthesis": "plants", "cell_division": "cells"}


def test_each_recipe_is_a_chain_of_stages():
    assert [next_stage(s, "pairs") for s in RECIPES["pairs"]] == ["keyframes", "caption", None]
    assert next_stage("keyframes") == "ocr" and next_stage("assemble") is None
    assert next_stage("caption", "textbook") is None  # not a textbook stage: nothing follows it there
    assert (upstream_phase("caption"), upstream_phase("ocr"), upstream_phase("download")) == (
        "keyframes", "keyframes", "discover")


@pytest.fixture
def pairs_subject(tmp_path, db_url, corpus_server, tiny_models):
    subjects = tmp_path / "subjects"
    subjects.mkdir()
    rows = [{"url": f"{corpus_server.base_url}/{video_id}.mp4", "label": label, "description": f"About {label}",
             "cover_url": f"{corpus_server.base_url}/{video_id}.jpg"} for video_id, label in VIDEOS.items()]
    (subjects / "clips.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (subjects / "short_clips.yaml").write_text("subject: Short clips\nrecipe: pairs\nmanifest: clips.jsonl\n")
    return Settings.from_env({**model_environment(tiny_models), "LECTERN_HOME": str(tmp_path),
                              "LECTERN_DB_URL": db_url, "LECTERN_SUBJECTS_DIR": str(subjects)})


def test_a_pairs_subject_goes_download_keyframes_caption_and_releases_pairs(pairs_subject):
    settings = pairs_subject
    prepare_discovery(settings, "Short clips")
    for stage in RECIPES["pairs"]:
        for video_id in VIDEOS:
            assert run_stage(stage, video_id, settings, owner="test") == EXIT_OK, (stage, video_id)
    with session_scope(settings.db_url) as session:
        rows = stage_rows(session, video_ids=list(VIDEOS))
    assert sorted({(r.stage, r.status) for r in rows}) == [
        ("caption", "succeeded"), ("download", "succeeded"), ("keyframes", "succeeded")]  # no transcribe, no ocr
    assert all(r.metrics["clip_segmenter"] == "scene" for r in rows if r.stage == "keyframes")

    manifest = build_pairs_release(settings, name="pairs1", subject="Short clips")
    store = store_from_settings(settings)
    captions = {v: store.get_json(Keys.captions(v))["clips"] for v in VIDEOS}
    kept = sum(c["kept"] for clips in captions.values() for c in clips)
    assert manifest["kind"] == "pairs" and manifest["stats"]["videos"] == 2 and manifest["stats"]["pairs"] == kept > 2

    import datasets

    local = store.root / "releases" / "pairs1"
    from_json = datasets.load_dataset("json", data_files=str(local / "pairs-*.jsonl"), split="train")
    from_parquet = datasets.load_dataset("parquet", data_files=str(local / "parquet" / "*.parquet"), split="train")
    assert len(from_json) == len(from_parquet) == kept
    first = from_parquet[0]
    assert first["video_id"] in VIDEOS and first["label"] == VIDEOS[first["video_id"]]
    assert first["description"] == f"About {first['label']}" and first["cover_url"].endswith(".jpg")
    assert first["clip_end"] > first["clip_start"] and first["caption"] and len(first["frame_captions"]) == 4
    assert sorted(from_json.column_names) == sorted(from_parquet.column_names)

    pairs = ReleaseDataset(store, "pairs1")
    assert pairs.kind == "pairs" and len(pairs) == kept
    item = pairs[0]
    assert item["caption"] == from_json[0]["caption"]
    assert all(image.size == (1280, 720) for image in item["images"])  # the clip's keyframes, from the store
