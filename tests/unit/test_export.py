"""`lectern export`: a release as the folder the paper's training loader reads (tests/obelics_loader.py applies
its every assertion and opens every image), packed across videos as published, moved and re-rooted, and its
face-filtered variant (SQLite and Postgres state; a local store here, the S3 server in the integration test)."""

import json
import shutil

import pytest

from lectern.cli import main
from lectern.export import export_release
from lectern.pipeline import artifact_key
from lectern.release import build_release
from lectern.store import Keys
from tests.conftest import assert_published_sample
from tests.obelics_loader import ObelicsCorpus, load_all
from tests.published import SAMPLE_KEYS, VIDEO_META_KEYS, assert_clip_level_file
from tests.unit.test_release import corpus, put_assembled  # noqa: F401  (the fixture)


@pytest.fixture
def packed(corpus, monkeypatch):  # noqa: F811
    """The two videos packed as published: short enough to share one sample."""
    import dataclasses

    settings, store, point = corpus
    monkeypatch.setenv("LECTERN_SAMPLE_PACKING", "release")
    return dataclasses.replace(settings, sample_packing="release"), store


def test_two_short_videos_share_one_sample_with_the_boundary_recorded(packed):
    settings, store = packed
    manifest = build_release(settings, name="packed")
    assert manifest["packing"] == {"mode": "release", "token_budget": 8192, "max_images": 32, "image_tokens": 576,
                                   "tokenizer": settings.embedding_model, "face_max_area": None}
    [sample] = [json.loads(line) for key in manifest["shards"] for line in store.get_bytes(key).decode().splitlines()]
    assert_published_sample(sample, manifest["packing"]["tokenizer"])
    assert sample["texts"] == [None, "v1 text", None, "v2 text"]
    assert [m["vid"] for m in sample["metadata"]] == ["v1", "v1", "v2", "v2"]
    assert [m.get("end_of_video", False) for m in sample["metadata"]] == [False, True, False, True]
    [record] = [json.loads(line) for key in manifest["clip_level_shards"]
                for line in store.get_bytes(key).decode().splitlines()]
    assert [c["vid"] for c in record["conversations"]] == ["v1", "End of a Video", "v2", "End of a Video"]
    assert store.get_json(Keys.release("packed", "length.json")) == {"samples-00000.jsonl": 1}
    assert store.get_json(Keys.release("packed", "shard_id_range.json")) == {"samples-00000.jsonl": [0, 1]}


@pytest.mark.parametrize("layout,data", [("json", "multimodal_textbook.json"), ("shards", "multimodal_textbook")])
def test_the_export_passes_the_papers_loader_and_follows_a_move(packed, tmp_path, layout, data, capsys):
    settings, store = packed
    build_release(settings, name="r")
    folder = tmp_path / "export"
    assert main(["export", "r", str(folder), "--layout", layout]) == 0
    assert "exported 1 samples and 2 images of release r" in capsys.readouterr().out
    [(images, text)] = load_all(str(folder / data))
    assert [image.getpixel((32, 18))[0] > 150 for image in images] == [True, True]  # the red keyframes
    assert text == "<image> v1 text <image> v2 text"
    sample = ObelicsCorpus(str(folder / data)).sample(0)
    assert set(sample) == SAMPLE_KEYS
    assert sample["images"][0] == str(folder / "dataset_images_interval_7" / "v1" / "v1@0.0_1.0#1.jpg")
    # from a local store on the same file system, an image is a hard link to the store's file: no bytes copied
    exported = (folder / "dataset_images_interval_7" / "v1" / "v1@0.0_1.0#1.jpg").stat()
    assert exported.st_ino == (tmp_path / "store" / Keys.keyframe("v1", 0.0, 1.0, 1)).stat().st_ino
    assert_clip_level_file(json.loads((folder / "multimodal_textbook_meta_data.json").read_text()), [sample])
    meta = json.loads((folder / "video_meta_data" / "video_meta_data1.json").read_text())
    assert [m["video_id"] for m in meta] == ["v1", "v2"]

    moved = tmp_path / "elsewhere"
    shutil.move(folder, moved)
    with pytest.raises(FileNotFoundError):
        load_all(str(moved / data))  # its paths still point at the old place...
    assert main(["reroot", str(moved)]) == 0
    [(images, _)] = load_all(str(moved / data))  # ...until re-rooted
    assert len(images) == 2
    record = json.loads((moved / "multimodal_textbook_meta_data.json").read_text())[0]
    assert record["conversations"][0]["keyframe_ssim"] == [str(moved / "dataset_images_interval_7/v1/v1@0.0_1.0#1.jpg")]


def test_the_face_filtered_variant_leaves_out_face_keyframes(packed, tmp_path):
    import dataclasses

    settings, store = packed
    settings = dataclasses.replace(settings, face_max_area=0.04)
    record = store.get_json(artifact_key("assemble", "clip_level", "v2"))
    record["conversations"][0]["face_keyframes"] = list(record["conversations"][0]["keyframe_ssim"])  # a talking head
    store.put_json(artifact_key("assemble", "clip_level", "v2"), record)
    build_release(settings, name="faces")
    info = export_release(store, "faces", tmp_path / "out", progress=lambda line: None)
    assert "multimodal_textbook_face_v1_th0.04.json" in info["files"] and info["face_keyframes"] == 1
    [(full, _)] = load_all(str(tmp_path / "out" / "multimodal_textbook.json"))
    [(faceless, text)] = load_all(str(tmp_path / "out" / "multimodal_textbook_face_v1_th0.04.json"))
    assert (len(full), len(faceless), text) == (2, 1, "<image> v1 text v2 text")
    [sample] = json.loads((tmp_path / "out" / "multimodal_textbook_face_v1_th0.04.json").read_text())
    assert sample["image_num"] == 1 and sample["token_num"] == sample["text_num"] + 576


def test_export_refuses_what_it_cannot_write(packed, tmp_path, capsys):
    assert main(["export", "nope", str(tmp_path / "x")]) == 2
    assert "export: no release 'nope' in file://" in capsys.readouterr().err
    assert main(["reroot", str(tmp_path)]) == 2
    assert "not a folder written by `lectern export`" in capsys.readouterr().err


def test_video_meta_data_has_the_published_keys(packed, tmp_path):
    """Through assemble's own code: a video's record with every published key and spelling, beside Lectern's."""
    from lectern.stage_types import VideoRecord
    from lectern.stages.assemble import run as assemble

    settings, store = packed
    store.put_json(artifact_key("download", "probe", "v1"), {"duration_s": 95.5, "size_bytes": 3 * 1024 * 1024})
    store.put_bytes(artifact_key("download", "source", "v1"), b"video")
    store.put_json(artifact_key("transcribe", "asr", "v1"), {"language": "en", "segments": [{"text": " Cells divide."}],
                                    "metrics": {"repeated_ngram_ratio": 0.0}})
    store.put_json(artifact_key("judge", "judge", "v1"), {"relevance": 0.6, "llm_response": {"judge_a": {
        "relevance": "On topic. ###Score: 8###", "knowledge_density": "Dense. ###Score: 6###"}},
        "judge_a_score": {"relevance": 8.0, "knowledge_density": 6.0}, "judge_a_decision": "accept"})
    video = VideoRecord(id="v1", url="http://x/v1", title="Cells", description="About cells", duration_s=95.0,
                        subjects=("Biology",), points=("Cells",), queries=("cells",),
                        artifacts={"download": {"source": artifact_key("download", "source", "v1")},
                                   "transcribe": {"asr": artifact_key("transcribe", "asr", "v1")},
                                   "judge": {"judge": artifact_key("judge", "judge", "v1")}})
    meta = assemble.video_meta_data(video, store, settings)
    assert VIDEO_META_KEYS <= set(meta)
    assert (meta["file_size (MB)"], meta["file_name"], meta["video_duration"], meta["unique"]) == (
        3.0, "v1.mp4", 95.5, True)
    assert (meta["asr_len"], meta["caption_len"], meta["asr is repetive"], meta["search_keyword"]) == (
        13, 0, False, "cells")
    assert meta["judge_a_score"] == 6 and isinstance(meta["judge_a_score"], int)  # the lowest criterion decides
    assert meta["llm_response"] == "relevance: On topic. ###Score: 8###\nknowledge_density: Dense. ###Score: 6###"
    assert meta["judge_a_scores"] == {"relevance": 8.0, "knowledge_density": 6.0}


def test_exporting_again_refreshes_the_folder_and_drops_a_forgotten_video(packed, tmp_path):
    settings, store = packed
    build_release(settings, name="first")
    export_release(store, "first", tmp_path / "out", progress=lambda line: None)
    put_assembled(store, settings, "v1", colour=(10, 10, 200))  # keyframes recomputed: a blue image now
    assert main(["forget", "v2", "--reason", "takedown"]) == 0
    build_release(settings, name="second")
    export_release(store, "second", tmp_path / "out", progress=lambda line: None)
    [(images, text)] = load_all(str(tmp_path / "out" / "multimodal_textbook.json"))
    assert text == "<image> v1 text" and images[0].getpixel((32, 18))[2] > 150  # the new image, not the old
    assert sorted(p.name for p in (tmp_path / "out" / "dataset_images_interval_7").rglob("*.jpg")) == [
        "v1@0.0_1.0#1.jpg"]


def test_the_webdataset_layout_reads_with_webdataset(packed, tmp_path, capsys):
    """`--layout webdataset`: tar shards that the webdataset package reads as samples, each its JSON and its
    keyframes as JPEG members decoded to pictures, equal to the store's images; a second export writes the same
    bytes."""
    import hashlib
    import io

    import webdataset
    from PIL import Image

    settings, store = packed
    manifest = build_release(settings, name="wds")
    folder = tmp_path / "wds"
    assert main(["export", "wds", str(folder), "--layout", "webdataset"]) == 0
    assert "exported 1 samples and 2 images" in capsys.readouterr().out
    [sample] = [json.loads(line) for key in manifest["shards"] for line in store.get_bytes(key).decode().splitlines()]
    read = list(webdataset.WebDataset(str(folder / "wds-00000.tar"), shardshuffle=False).decode("pil"))
    assert len(read) == 1 and read[0]["__key__"] == "wds_000000000"
    record = read[0]["json"]
    assert record["texts"] == sample["texts"] and record["metadata"] == sample["metadata"]
    assert record["images"] == ["0.jpg", None, "2.jpg", None]
    for n, key in ((0, sample["images"][0]), (2, sample["images"][2])):
        picture = read[0][f"{n}.jpg"]
        assert picture.size == Image.open(io.BytesIO(store.get_bytes(key))).size == (64, 36)
    first = hashlib.sha256((folder / "wds-00000.tar").read_bytes()).hexdigest()
    assert main(["export", "wds", str(folder), "--layout", "webdataset"]) == 0
    assert hashlib.sha256((folder / "wds-00000.tar").read_bytes()).hexdigest() == first
    assert json.loads((folder / "export.json").read_text())["files"] == ["wds-00000.tar"]


def test_an_export_goes_through_the_release_a_shard_at_a_time(corpus, tmp_path, monkeypatch):  # noqa: F811
    """A release of several shards (one sample each): each sample shard is exported with its clip-level shard,
    line for line, into the same files a one-shard release gives, the face variant included."""
    import dataclasses

    import lectern.release

    settings, store, _ = corpus  # packed per video: two samples
    settings = dataclasses.replace(settings, face_max_area=0.04)
    record = store.get_json(artifact_key("assemble", "clip_level", "v2"))
    record["conversations"][0]["face_keyframes"] = list(record["conversations"][0]["keyframe_ssim"])
    store.put_json(artifact_key("assemble", "clip_level", "v2"), record)
    build_release(settings, name="whole")
    monkeypatch.setattr(lectern.release, "SHARD_SAMPLES", 1)
    manifest = build_release(settings, name="sharded")
    assert len(manifest["shards"]) == len(manifest["clip_level_shards"]) == 2
    exported = {}
    for name in ("whole", "sharded"):
        info = export_release(store, name, tmp_path / name, progress=lambda line: None)
        assert (info["images"], info["clip_level_records"], info["face_keyframes"]) == (2, 2, 1)
        exported[name] = {file: (tmp_path / name / file).read_text().replace(str(tmp_path / name), "ROOT")
                          for file in info["files"]}
    assert exported["sharded"] == exported["whole"]
    [(images, text)] = load_all(str(tmp_path / "sharded" / "multimodal_textbook_face_v1_th0.04.json"))
    assert (len(images), text) == (1, "<image> v1 text")
    assert (tmp_path / "sharded" / "export-images.txt").read_text().split() == [
        "dataset_images_interval_7/v1/v1@0.0_1.0#1.jpg", "dataset_images_interval_7/v2/v2@0.0_1.0#1.jpg"]


def test_arrays_are_read_a_value_at_a_time(tmp_path):
    """lectern.arrays: an array as Lectern writes it is read a line at a time (a broken value further on is not
    read before the first is handed over); one laid out otherwise is read whole."""
    from lectern.arrays import read_array, write_array

    path = tmp_path / "values.json"
    with open(path, "w") as handle:
        assert write_array(handle, [{"a": "x\ny"}, [1, 2], None]) == 3
    assert json.loads(path.read_text()) == list(read_array(path)) == [{"a": "x\ny"}, [1, 2], None]
    path.write_text(path.read_text().replace("[1, 2]", "[1, 2"))
    values = read_array(path)
    assert next(values) == {"a": "x\ny"}
    with pytest.raises(json.JSONDecodeError):
        next(values)
    path.write_text(json.dumps([{"a": 1}, {"b": 2}], indent=2))
    assert list(read_array(path)) == [{"a": 1}, {"b": 2}]


def test_the_parquet_layout_carries_its_images_and_loads_with_datasets(corpus, tmp_path, monkeypatch,  # noqa: F811
                                                                         capsys):
    """`--layout parquet`: shards with each image's bytes inside and a dataset card; `datasets.load_dataset(folder)`
    reads the samples with their pictures decoded, equal to the store's, after the folder moved and the store is
    gone. Row groups of one sample: a shard is written a few samples at a time."""

    import datasets

    import lectern.export
    import lectern.release

    monkeypatch.setattr(lectern.export, "ROW_GROUP_SAMPLES", 1)
    monkeypatch.setattr(lectern.release, "SHARD_SAMPLES", 1)
    settings, store, _ = corpus  # packed per video: two samples, two shards
    put_assembled(store, settings, "v2", colour=(10, 10, 200), size=(48, 40))
    manifest = build_release(settings, name="pq")
    folder = tmp_path / "pq"
    assert main(["export", "pq", str(folder), "--layout", "parquet"]) == 0
    assert "exported 2 samples and 2 images" in capsys.readouterr().out
    samples = [json.loads(line) for key in manifest["shards"] for line in store.get_bytes(key).decode().splitlines()]
    moved = tmp_path / "moved"
    shutil.move(folder, moved)
    shutil.rmtree(tmp_path / "store")
    loaded = datasets.load_dataset(str(moved), split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert len(loaded) == 2 and [row["texts"] for row in loaded] == [s["texts"] for s in samples]
    assert [json.loads(row["metadata"]) for row in loaded] == [s["metadata"] for s in samples]
    pictures = [[p for p in row["images"] if p is not None] for row in loaded]
    assert [[(p.size, p.getpixel((20, 18))[2] > 150) for p in row] for row in pictures] == [
        [((64, 36), False)], [((48, 40), True)]]  # v1's red keyframe, v2's blue one
    assert [row["images"][1] for row in loaded] == [None, None]  # a text position holds no image
