"""The pairs recipe end to end on the runner (real yt-dlp downloads from the loopback corpus, the tiny models):
a manifest subject whose recipe is pairs goes download -> keyframes (clips at scene changes, no transcript) ->
caption, and its release loads with `datasets` and as a PyTorch Dataset."""

import json

import pytest

from lectern.config import Settings
from lectern.export import score_column, timestamp
from lectern.phase_tasks import prepare_discovery
from lectern.pipeline import artifact_key
from lectern.recipes import RECIPES, next_stage, upstream_phases
from lectern.release import build_pairs_release
from lectern.runner import EXIT_OK, run_stage
from lectern.state.db import session_scope
from lectern.state.reports import stage_rows
from lectern.store import Keys, store_from_settings
from lectern.training import ReleaseDataset
from tests.conftest import model_environment

VIDEOS = {"photosynthesis": "Nature", "dna_replication": "Nature", "cell_division": "Technology",
          "pasta_recipe": "Technology"}


def test_each_recipe_is_a_chain_of_stages():
    assert [next_stage(s, "pairs") for s in RECIPES["pairs"].stages] == ["keyframes", "caption", None]
    assert next_stage("keyframes") == "ocr" and next_stage("assemble") is None
    assert next_stage("caption", "textbook") is None  # not a textbook stage: nothing follows it there
    assert (upstream_phases("caption"), upstream_phases("ocr"), upstream_phases("download")) == (
        ("keyframes",), ("keyframes",), ("discover",))
    assert upstream_phases("keyframes") == ("download", "judge")  # pairs, textbook: either one's Asset runs it


@pytest.fixture
def pairs_subject(tmp_path, db_url, corpus_server, demo_corpus, tiny_models):
    from PIL import Image

    for n, video_id in enumerate(VIDEOS):  # each video's cover image, served beside it
        Image.new("RGB", (160 + n, 90), (200, 40 * n, 10)).save(demo_corpus[0] / f"{video_id}.jpg")
    subjects = tmp_path / "subjects"
    subjects.mkdir()
    # The short-video dataset's own manifest format (multimodal_data_info.json, JSON lines), served on loopback.
    rows = [{"mp4_id": video_id, "mp4_download_url": f"{corpus_server.base_url}/{video_id}.mp4", "mp4_time": "0:24",
             "mp4_background_image_url": f"{corpus_server.base_url}/{video_id}.jpg",
             "mp4_txt_brief": f" About {label}", "video_label": label} for video_id, label in VIDEOS.items()]
    (subjects / "multimodal_data_info.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (subjects / "short_clips.yaml").write_text("subject: Short clips\nrecipe: pairs\n"
                                               "manifest: multimodal_data_info.json\n"
                                               "manifest_columns: short_video_dataset\n")
    return Settings.from_env({**model_environment(tiny_models), "LECTERN_HOME": str(tmp_path),
                              "LECTERN_DB_URL": db_url, "LECTERN_SUBJECTS_DIR": str(subjects)})


def test_a_pairs_subject_goes_download_keyframes_caption_and_releases_pairs(pairs_subject):
    settings = pairs_subject
    prepare_discovery(settings, "Short clips")
    for stage in RECIPES["pairs"].stages:
        for video_id in VIDEOS:
            assert run_stage(stage, video_id, settings, owner="test") == EXIT_OK, (stage, video_id)
    with session_scope(settings.db_url) as session:
        rows = stage_rows(session, video_ids=list(VIDEOS))
    assert sorted({(r.stage, r.status) for r in rows}) == [
        ("caption", "succeeded"), ("download", "succeeded"), ("keyframes", "succeeded")]  # no transcribe, no ocr
    assert all(r.metrics["clip_segmenter"] == "scene" for r in rows if r.stage == "keyframes")

    manifest = build_pairs_release(settings, name="pairs1", subject="Short clips")
    store = store_from_settings(settings)
    captions = {v: store.get_json(artifact_key("caption", "captions", v))["clips"] for v in VIDEOS}
    kept = sum(c["kept"] for clips in captions.values() for c in clips)
    assert manifest["kind"] == "pairs" and manifest["stats"]["videos"] == 4 and manifest["stats"]["pairs"] == kept > 4

    import datasets

    local = store.root / "releases" / "pairs1"
    from_json = datasets.load_dataset("json", data_files=str(local / "pairs-*.jsonl"), split="train")
    from_parquet = datasets.load_dataset("parquet", data_files=str(local / "parquet" / "*.parquet"), split="train")
    assert len(from_json) == len(from_parquet) == kept
    first = from_parquet[0]
    assert first["video_id"] in VIDEOS and first["label"] == VIDEOS[first["video_id"]]
    assert first["description"] == f"About {first['label']}" and first["cover_url"].endswith(".jpg")
    assert first["cover"] == f"videos/{first['video_id']}/cover.jpg"  # fetched into the store, beside the keyframes
    from PIL import Image

    with Image.open(store.root / first["cover"]) as cover:
        assert cover.size == (160 + list(VIDEOS).index(first["video_id"]), 90)
    assert first["clip_end"] > first["clip_start"] and first["caption"] and len(first["frame_captions"]) == 4
    assert sorted(from_json.column_names) == sorted(from_parquet.column_names)

    categories = store.get_json(Keys.release("pairs1", "stats.json"))["categories"]
    assert set(categories) == set(VIDEOS.values())  # the per-category table: videos, hours, disk
    assert all(e["videos"] == 2 and e["hours"] > 0.005 and e["disk_gb"] > 0 for e in categories.values())
    table = (local / "stats.md").read_text()
    assert "| category | videos | hours | disk (GB) |" in table and "| Nature | 2 | 0.0" in table

    from lectern.export import export_internvid

    info = export_internvid(store, "pairs1", settings.home / "internvid")  # InternVid's own column layout
    lines = [json.loads(line) for line in (settings.home / "internvid" / "internvid.jsonl").read_text().splitlines()]
    assert info["score_column"] == "CLIP_Score" and len(lines) == kept
    # the score model changed after captioning: the column still names the model that scored these pairs
    import dataclasses

    today = dataclasses.replace(settings, caption_score_model="OpenGVLab/UMT-L16")
    build_pairs_release(today, name="pairs2", subject="Short clips")
    assert export_internvid(store, "pairs2", settings.home / "internvid2")["score_column"] == "CLIP_Score"
    assert list(lines[0]) == ["YoutubeID", "Start_timestamp", "End_timestamp", "Caption", "Aesthetic_Score",
                              "CLIP_Score"]
    row = next(r for r in from_json if r["video_id"] == lines[0]["YoutubeID"] and r["caption"] == lines[0]["Caption"])
    assert lines[0]["Start_timestamp"] == timestamp(row["clip_start"])
    assert lines[0]["CLIP_Score"] == row["clip_similarity"]

    from lectern.baseline import train

    baseline = train(settings, "pairs1", epochs=20, test_fraction=0.5)  # the dataset's baseline trains on it
    assert baseline["overall"]["test"] == 2 and set(baseline["categories"]) == set(VIDEOS.values())
    assert baseline["features"]["cover"] == settings.caption_score_model

    pairs = ReleaseDataset(store, "pairs1")
    assert pairs.kind == "pairs" and len(pairs) == kept
    item = pairs[0]
    assert item["caption"] == from_json[0]["caption"]
    assert all(image.size == (1280, 720) for image in item["images"])  # the clip's keyframes, from the store
    assert item["cover_image"].size[1] == 90  # its video's cover
    assert [i["caption"] for i in pairs] == [r["caption"] for r in from_json]  # a plain Python iterator
    batches = list(pairs.numpy_batches(batch_size=3, image_size=(64, 32)))
    assert [len(b["caption"]) for b in batches] == [3] * (kept // 3) + ([kept % 3] if kept % 3 else [])
    first_batch = batches[0]
    assert first_batch["keyframe"].shape == (3, 32, 64, 3) and first_batch["keyframe"].dtype.name == "uint8"
    assert first_batch["cover"].shape == (3, 32, 64, 3) and first_batch["has_cover"].all()
    assert first_batch["clip_end"].dtype.name == "float32"
    assert (first_batch["clip_end"] > first_batch["clip_start"]).all()


def test_internvid_timestamps_and_the_score_column_named_for_its_model():
    assert [timestamp(s) for s in (0, 16.0, 83.4567, 3723.5)] == [
        "00:00:00.000", "00:00:16.000", "00:01:23.457", "01:02:03.500"]
    assert score_column("OpenGVLab/UMT-L16") == "UMT_Score"
    assert score_column("openai/clip-vit-base-patch32") == "CLIP_Score"
    assert score_column("OpenGVLab/ViCLIP") == "ViCLIP_Score"
    assert score_column("google/siglip-base-patch16-224") == "SigLIP_Score"
    assert score_column("/models/my-scorer") == "Similarity_Score"
