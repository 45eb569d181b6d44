"""Releases and takedown: `lectern forget` removes a video's artifacts, no phase picks it up again, a later
search does not revive it, and the next release leaves it out with the reason in its diff (SQLite and Postgres)."""

import dataclasses
import json

import pytest

from lectern.cli import main
from lectern.config import Settings
from lectern.pipeline import artifact_key
from lectern.recipes import RECIPES, STAGES
from lectern.release import build_release
from lectern.state.catalog import FoundVideo, PointSpec, record_search, sync_subject
from lectern.state.db import session_scope
from lectern.state.models import FORGOTTEN, VideoStage
from lectern.state.reports import stage_rows
from lectern.state.transitions import claim_one, claim_videos, mark_rejected, mark_succeeded, reset_for_rerun
from lectern.store import Keys, LocalStore


def put_assembled(store, settings, video_id, colour=(200, 10, 10), text=None, size=(64, 36)):
    """What assemble leaves for a release: one clip with one real keyframe JPEG and its text (the clip-level file
    made by assemble's own code), and the video's metadata record."""
    import io

    from PIL import Image

    from lectern import packing
    from lectern.stages.assemble import run as assemble

    jpeg = io.BytesIO()
    Image.new("RGB", size, colour).save(jpeg, "JPEG")
    key = store.put_bytes(Keys.keyframe(video_id, 0.0, 1.0, 1), jpeg.getvalue())
    clips = [{"start": 0.0, "end": 1.0, "asr": text or f"{video_id} text", "sampled_times": [0.0, 0.5],
              "keyframes": [{"key": key, "time": 0.5, "ssim": None}]}]
    entries = assemble.clip_entries(video_id, clips, {"engine": "tesseract", "texts": {key: ""}}, settings)
    store.put_json(artifact_key("assemble", "clip_level", video_id), {"token_num": entries[0]["token_num"],
                                               "conversations": entries + [packing.end_of_video(video_id)]})
    store.put_json(artifact_key("assemble", "video_meta", video_id), {"video_id": video_id, "title": video_id})
    return key


@pytest.fixture
def corpus(db_url, tmp_path, monkeypatch):
    """Two videos through every stage (state transitions, and each one's assembled clip in the store), packed
    per video (one sample each)."""
    env = {"LECTERN_HOME": str(tmp_path), "LECTERN_DB_URL": db_url, "LECTERN_STORE_URL": f"file://{tmp_path}/store",
           "LECTERN_SAMPLE_PACKING": "video"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings.from_env(env)
    store = LocalStore(tmp_path / "store")
    with session_scope(db_url) as session:
        point = sync_subject(session, "Biology", [PointSpec("Cells", "Cells", "cells")])[0]
        record_search(session, point, [FoundVideo("v1", "http://x/v1"), FoundVideo("v2", "http://x/v2")], {})
    for video_id in ("v1", "v2"):
        for stage in RECIPES["textbook"].stages:
            with session_scope(db_url) as session:
                claim_one(session, video_id, stage, "test", 60, 3)
                mark_succeeded(session, video_id, stage, "test", {"k": Keys.video(video_id, stage)}, {})
            store.put_json(Keys.video(video_id, f"{stage}.json"), {"stage": stage})
        put_assembled(store, settings, video_id)
    return settings, store, point


def test_forget_removes_everything_and_the_next_release_lacks_it(corpus, capsys):
    settings, store, point = corpus
    first = build_release(settings, name="r1", subject="Biology")
    assert [v["id"] for v in first["videos"]] == ["v1", "v2"]
    assert first["diff"] == {"previous": None, "added": ["v1", "v2"], "removed": []}

    assert main(["forget", "v2", "--reason", "copyright claim"]) == 0
    assert "v2: forgotten (copyright claim); 6 stage rows marked, 9 artifacts removed" in capsys.readouterr().out
    assert store.list(Keys.video("v2", "")) == [] and store.list(Keys.video("v1", ""))
    with session_scope(settings.db_url) as session:
        rows = stage_rows(session, video_ids=["v2"])
        assert {r.status for r in rows} == {FORGOTTEN} and rows[0].reason == "forgotten: copyright claim"
        # found again by a search: neither revived nor linked
        assert record_search(session, point, [FoundVideo("v2", "http://x/v2")], {})["new_links"] == 0
        assert {r.status for r in stage_rows(session, video_ids=["v2"])} == {FORGOTTEN}

    second = build_release(settings, name="r2", subject="Biology")
    assert [v["id"] for v in second["videos"]] == ["v1"]
    assert second["diff"] == {"previous": "r1", "added": [],
                              "removed": [{"id": "v2", "why": "forgotten: copyright claim"}]}
    lines = [json.loads(line) for key in second["shards"] for line in store.get_bytes(key).decode().splitlines()]
    assert [s["texts"] for s in lines] == [[None, "v1 text"]]
    with session_scope(settings.db_url) as session:
        assert reset_for_rerun(session, "ocr", subject="Biology") == 1  # force resets v1 only
        assert claim_videos(session, "ocr", "again", 10, 60, 3) == ["v1"]


def test_forget_refuses_a_running_stage_and_unknown_videos(corpus, capsys):
    settings, store, _ = corpus
    with session_scope(settings.db_url) as session:
        reset_for_rerun(session, "ocr", video_ids=["v1"])
        claim_one(session, "v1", "ocr", "someone", 600, 3)
    assert main(["forget", "v1"]) == 2
    assert "forget: v1: ocr is running (lease until" in capsys.readouterr().err
    assert store.list(Keys.video("v1", ""))  # nothing removed
    assert main(["forget", "v1", "--force"]) == 0
    assert main(["forget", "nope"]) == 2
    assert "unknown video 'nope'" in capsys.readouterr().err


def test_status_shows_forgotten_videos(corpus, capsys):
    assert main(["status"]) == 0
    assert "forgotten" not in capsys.readouterr().out
    assert main(["forget", "v1"]) == 0
    capsys.readouterr()
    assert main(["status"]) == 0
    header, download = capsys.readouterr().out.splitlines()[:2]
    assert header.split()[-1] == "forgotten" and download.split()[-1] == "1"


def test_status_lists_what_needs_a_look_under_the_funnel(corpus, capsys, monkeypatch):
    """Without ids: the funnel, then the failed, rejected and running rows only (STATUS_LISTED at most, saying how
    many more); --all lists every row."""
    import lectern.cli

    settings, _, _ = corpus
    with session_scope(settings.db_url) as session:
        for video_id, stage, status, reason, error in (("v1", "ocr", "failed", None, "CorruptMedia"),
                                                       ("v2", "judge", "rejected", "off topic", None)):
            row = session.get(VideoStage, (video_id, stage))
            row.status, row.reason, row.error_class, row.error_message = status, reason, error, error and "bad"
    assert main(["status", "--subject", "Biology"]) == 0
    listed = capsys.readouterr().out.split("\n\n", 1)[1].splitlines()
    assert [line.split()[:3] for line in listed] == [["v1", "ocr", "failed"], ["v2", "judge", "rejected"]]
    assert "CorruptMedia: bad" in listed[0] and "off topic" in listed[1]
    monkeypatch.setattr(lectern.cli, "STATUS_LISTED", 1)
    assert main(["status"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("... and 1 more failed, rejected or running rows (--all lists "
                                                     "every row; --json too)")
    assert main(["status", "--all"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2 * len(RECIPES["textbook"].stages)


def test_stale_only_reruns_what_the_changed_settings_affect(corpus):
    """Results recorded with the current settings' versions; then the OCR settings change: only OCR is stale,
    and OCR's new result makes assemble pending again (nothing upstream moves)."""
    import dataclasses

    from lectern.phase_tasks import claim
    from lectern.pipeline import stage_version

    settings, _, _ = corpus
    with session_scope(settings.db_url) as session:
        for row in session.query(VideoStage):
            row.version = stage_version(row.stage, settings)
    assert claim(settings, "ocr", "run-1", stale_only=True) == []  # nothing changed: nothing to redo
    changed = dataclasses.replace(settings, ocr_min_confidence=80.0)
    assert stage_version("ocr", changed) != stage_version("ocr", settings)
    assert all(stage_version(s, changed) == stage_version(s, settings) for s in STAGES if s != "ocr")
    for stage in STAGES:
        if stage != "ocr":
            assert claim(changed, stage, "run-2", stale_only=True) == [], stage
    assert claim(changed, "ocr", "run-2", stale_only=True, subject="Biology") == ["v1", "v2"]
    with session_scope(settings.db_url) as session:
        mark_succeeded(session, "v1", "ocr", "run-2", {}, {}, stage_version("ocr", changed))
        status = {r.stage: r.status for r in stage_rows(session, video_ids=["v1"])}
    assert status == {"download": "succeeded", "transcribe": "succeeded", "judge": "succeeded",
                      "keyframes": "succeeded", "ocr": "succeeded", "assemble": "pending"}


def test_a_rerun_that_now_rejects_takes_the_video_out_of_the_next_release(corpus):
    """judge is forced again for v1 and now rejects it: v1's later stages (keyframes, ocr, assemble: computed
    from the old verdict) must not stay succeeded, or the next release would still include it."""
    from lectern.phase_tasks import claim

    settings, _, _ = corpus
    assert [v["id"] for v in build_release(settings, name="before")["videos"]] == ["v1", "v2"]
    assert claim(settings, "judge", "rerun", video_ids=["v1"], force=True) == ["v1"]
    with session_scope(settings.db_url) as session:
        assert [r.stage for r in stage_rows(session, video_ids=["v1"])] == ["download", "transcribe", "judge"]
        mark_rejected(session, "v1", "judge", "rerun", "judge: not educational", {})
    after = build_release(settings, name="after")
    assert [v["id"] for v in after["videos"]] == ["v2"]
    assert after["diff"]["removed"] == [{"id": "v1", "why": "no longer assembled"}]


def test_a_stale_keyframes_rerun_leaves_nothing_pointing_at_the_keyframes_it_replaces(corpus):
    import dataclasses

    from lectern.phase_tasks import claim
    from lectern.pipeline import stage_version

    settings, _, _ = corpus
    with session_scope(settings.db_url) as session:
        for row in session.query(VideoStage):
            row.version = stage_version(row.stage, settings)
    changed = dataclasses.replace(settings, ssim_threshold=settings.ssim_threshold / 2)
    assert claim(changed, "keyframes", "rerun", stale_only=True, subject="Biology") == ["v1", "v2"]
    with session_scope(settings.db_url) as session:
        left = {r.stage: r.status for r in stage_rows(session, video_ids=["v1"])}
        assert left == {"download": "succeeded", "transcribe": "succeeded", "judge": "succeeded",
                        "keyframes": "running"}  # no ocr or assemble row still pointing at the old keyframes
        mark_succeeded(session, "v1", "keyframes", "rerun", {}, {}, stage_version("keyframes", changed))
        assert {r.stage: r.status for r in stage_rows(session, video_ids=["v1"])}["ocr"] == "pending"


def test_manifest_records_lineage(corpus):
    from lectern.pipeline import stage_config, stage_version

    settings, _, _ = corpus
    manifest = build_release(settings, name="lineage")
    # results recorded before rows kept their settings (version None here): nothing to explain
    assert manifest["stage_configs"] == {stage: {} for stage in RECIPES["textbook"].stages}
    with session_scope(settings.db_url) as session:  # as the runner records each result: version and settings
        for row in session.query(VideoStage):
            row.version, row.config = stage_version(row.stage, settings), stage_config(row.stage, settings)
    manifest = build_release(settings, name="lineage")
    assert manifest["stage_configs"]["ocr"] == {stage_version("ocr", settings): stage_config("ocr", settings)}
    [judged] = manifest["stage_configs"]["judge"].values()
    assert judged["judge_models"] == list(settings.judge_models)
    released = set(manifest["videos"][0]["stage_versions"])
    assert released == set(RECIPES["textbook"].stages) == set(manifest["stage_configs"])


def test_lineage_is_the_settings_of_the_released_results_not_of_today(corpus):
    """Settings changed after the results were computed: the manifest explains each released result's version with
    the settings it was computed with (recorded on its row), not with today's."""
    import dataclasses

    from lectern.pipeline import stage_config, stage_version

    settings, _, _ = corpus
    with session_scope(settings.db_url) as session:
        for row in session.query(VideoStage):
            row.version, row.config = stage_version(row.stage, settings), stage_config(row.stage, settings)
    today = dataclasses.replace(settings, ocr_min_chars=settings.ocr_min_chars + 7)
    assert stage_version("ocr", today) != stage_version("ocr", settings)
    manifest = build_release(today, name="later")
    released = {video["stage_versions"]["ocr"] for video in manifest["videos"]}
    assert released == {stage_version("ocr", settings)}
    assert manifest["stage_configs"]["ocr"] == {stage_version("ocr", settings): stage_config("ocr", settings)}
    assert manifest["stage_configs"]["ocr"][stage_version("ocr", settings)]["ocr_min_chars"] == settings.ocr_min_chars


def test_parquet_shards_load_with_datasets(corpus, tmp_path):
    import datasets

    settings, store, _ = corpus
    manifest = build_release(settings, name="hf")
    files = [str(tmp_path / "store" / key) for key in manifest["parquet_shards"]]
    loaded = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert len(loaded) == manifest["stats"]["samples"] == 2
    jsonl = [json.loads(line) for key in manifest["shards"] for line in store.get_bytes(key).decode().splitlines()]
    for row, sample in zip(loaded, jsonl):
        assert row["images"] == sample["images"] and row["texts"] == sample["texts"]
        assert json.loads(row["metadata"]) == sample["metadata"]
        assert (row["image_num"], row["token_num"]) == (sample["image_num"], sample["token_num"])


def test_the_release_folder_loads_with_datasets_as_it_is(corpus, tmp_path):
    """`load_dataset(<release folder>)` reads the JSONL samples through the folder's dataset card (and its
    `parquet` config the Parquet shards): every position's metadata has one schema, so Arrow reads image and text
    positions, and a video's end, in one list."""
    import dataclasses

    import datasets

    settings, store, _ = corpus
    manifest = build_release(dataclasses.replace(settings, sample_packing="release"), name="hf")
    folder = tmp_path / "store" / "releases" / "hf"
    assert (folder / "README.md").read_text().startswith("---\nconfigs:")
    cache = str(tmp_path / "hf-cache")
    loaded = datasets.load_dataset(str(folder), split="train", cache_dir=cache)
    jsonl = [json.loads(line) for key in manifest["shards"] for line in store.get_bytes(key).decode().splitlines()]
    assert len(loaded) == len(jsonl) == manifest["stats"]["samples"] == 1  # both videos packed in one sample
    assert loaded[0]["images"] == jsonl[0]["images"] and loaded[0]["metadata"] == jsonl[0]["metadata"]
    assert [m["end_of_video"] for m in loaded[0]["metadata"]] == [False, True, False, True]
    assert {m["time"] is None for m in loaded[0]["metadata"][1::2]} == {True}  # text positions have no time
    parquet = datasets.load_dataset("parquet", data_dir=str(folder / "parquet"), split="train", cache_dir=cache)
    assert parquet["images"] == loaded["images"]


def test_rebuilding_a_release_under_its_name_leaves_no_shard_of_the_old_build(corpus, tmp_path, monkeypatch):
    """Two shards, then a takedown and a rebuild under the same name with one shard: a `parquet/*` glob (what
    users load) must read the new build only, the taken-down video's sample not among them."""
    import datasets

    from lectern import release

    settings, store, _ = corpus
    monkeypatch.setattr(release, "SHARD_SAMPLES", 1)
    first = build_release(settings, name="weekly")
    assert len(first["shards"]) == 2
    assert main(["forget", "v2", "--reason", "takedown"]) == 0
    second = build_release(settings, name="weekly")
    assert len(second["shards"]) == len(second["parquet_shards"]) == 1
    assert not [key for key in store.list(Keys.release("weekly", "")) if "00001" in key]
    files = sorted(str(path) for path in (tmp_path / "store" / "releases" / "weekly" / "parquet").glob("*"))
    loaded = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert [json.loads(m)[0]["vid"] for m in loaded["metadata"]] == ["v1"]
    named = {key for field in ("shards", "clip_level_shards", "parquet_shards", "stats_files", "shard_index")
             for key in second[field]}
    named |= {second["viewer"], second["video_meta_data"], second["card"], Keys.release("weekly", "manifest.json")}
    assert set(store.list(Keys.release("weekly", ""))) == named  # the manifest names every file there


def test_a_release_is_a_pytorch_dataset_with_its_images_opened(corpus):
    import torch

    from lectern.training import ReleaseDataset

    settings, store, _ = corpus
    key = Keys.keyframe("v1", 0.0, 1.0, 1)
    build_release(settings, name="torch")
    samples = ReleaseDataset(store, "torch")
    assert isinstance(samples, torch.utils.data.Dataset) and samples.kind == "textbook" and len(samples) == 2
    first = samples[0]
    assert first["texts"] == [None, "v1 text"] and first["images"][1] is None
    assert first["images"][0].size == (64, 36) and first["images"][0].getpixel((32, 18))[0] > 150  # the red frame
    assert ReleaseDataset(store, "torch", load_images=False)[0]["images"] == [key, None]
    [batch] = list(torch.utils.data.DataLoader(samples, batch_size=2, collate_fn=list))
    assert [item["texts"][-1] for item in batch] == ["v1 text", "v2 text"]
    assert [item["texts"][-1] for item in samples] == ["v1 text", "v2 text"]  # plain Python iteration
    [arrays] = list(samples.numpy_batches(batch_size=4, image_size=(16, 9)))
    assert arrays["image_num"].tolist() == [s["image_num"] for s in samples.items]
    assert arrays["images"][0][0].shape == (9, 16, 3) and arrays["images"][0][1] is None


@pytest.mark.parametrize("batch", [None, 1])
def test_stats_equal_counts_recomputed_from_the_state(corpus, batch, monkeypatch):
    """The release's stats against counts made here from the state DB, after a rejection and a failure; the same
    when its pass over the state fetches the rows one at a time (a video's rows then span fetches)."""
    import lectern.release
    from lectern.state.models import Video, VideoStage

    if batch:
        monkeypatch.setattr(lectern.release, "GATHER_BATCH", batch)
    settings, store, point = corpus
    with session_scope(settings.db_url) as session:
        record_search(session, point, [FoundVideo("v3", "http://x/v3"), FoundVideo("v4", "http://x/v4")], {})
        for video_id, status, reason, error in (("v3", "rejected", "metadata filter: duration 5.0s < 10s", None),
                                                ("v4", "failed", None, "CorruptMedia")):
            row = session.get(VideoStage, (video_id, "download"))
            row.status, row.reason, row.error_class = status, reason, error
            row.seconds = 36.0  # spent, though neither is released: the release's cost counts it
        for video_id, seconds in (("v1", 600.0), ("v2", 1200.0)):
            session.get(Video, video_id).duration_s = seconds
            row = session.get(VideoStage, (video_id, "assemble"))
            row.metrics = {"clips": 3, "images": 4, "asr_tokens": 100, "ocr_tokens": 20}
            for stage_row in session.query(VideoStage).filter_by(video_id=video_id):
                stage_row.seconds = 2.0
            session.get(VideoStage, (video_id, "transcribe")).metrics = {
                "segments_decoded": 10, "segments_redone_looping": 2, "segments_dropped_looping": 1}
    manifest = build_release(dataclasses.replace(settings, gpu_hour_price=3.6, cpu_hour_price=0.36), name="stats",
                             subject="Biology")
    stats = store.get_json(Keys.release("stats", "stats.json"))
    assert stats["funnel"]["download"] == {"in": 4, "out": 2, "rejected": {"metadata filter: duration Ns < Ns": 1},
                                           "failed": {"CorruptMedia": 1}, "other": 0}
    assert stats["funnel"]["ocr"] == {"in": 2, "out": 2, "rejected": {}, "failed": {}, "other": 0}
    assert stats["subjects"] == {"Biology": {"videos": 2, "hours": 0.5, "clips": 6, "keyframes": 8,
                                             "asr_tokens": 200, "ocr_tokens": 40, "samples": 2}}
    assert stats["cost"]["seconds"]["transcribe"] == 4.0 and stats["cost"]["gpu_seconds"] == 8.0
    assert stats["cost"]["seconds_per_video_hour"]["ocr"] == 8.0
    assert stats["cost"]["per_video"]["v2"] == dict.fromkeys(RECIPES["textbook"].stages, 2.0)
    # spent: 2 s a stage for v1 and v2, and 36 s each for v3's and v4's downloads; GPU stages at 3.6 an hour
    # (0.001 a second), the others at 0.36 (0.0001 a second)
    assert stats["cost"]["spent_seconds"]["download"] == 76.0 and stats["cost"]["spent_seconds"]["ocr"] == 4.0
    gpu, cpu = stats["cost"]["gpu_seconds"], stats["cost"]["cpu_seconds"] + 72.0
    assert stats["cost"]["cost"] == pytest.approx(gpu * 0.001 + cpu * 0.0001)
    assert stats["cost"]["cost_per_kept_video_hour"] == pytest.approx(stats["cost"]["cost"] / 0.5)
    assert "per kept video-hour" in store.get_bytes(Keys.release("stats", "stats.md")).decode()
    assert "caption" not in stats["funnel"] and "caption" not in stats["cost"]["seconds"]  # not a textbook stage
    assert stats["asr"] == {"segments_decoded": 20, "segments_redone_looping": 4, "segments_dropped_looping": 2}
    assert all(store.exists(key) for key in manifest["stats_files"])
    page = store.get_bytes(manifest["viewer"]).decode()  # the viewer itself is tested in Chromium (test_viewer.py)
    assert page.count("<section class='sample'") == 2 and "v1 text" in page
    png = store.get_bytes(Keys.release("stats", "images_per_sample.png"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = store.get_bytes(Keys.release("stats", "stats.md")).decode()
    assert "| download | 4 | 2 | 1 metadata filter: duration Ns &lt; Ns | 1 CorruptMedia |" in markdown
    assert "4 looped and were decoded again, 2 still looped and were dropped" in markdown


def test_status_links_each_phase_log(corpus, capsys):
    from lectern.state.models import VideoStage

    settings, _, _ = corpus
    with session_scope(settings.db_url) as session:
        row = session.get(VideoStage, ("v1", "ocr"))
        row.run_id, row.map_index = "manual__2026-11-22T05:23:24.393600+00:00", 3
    assert main(["status", "v1"]) == 0
    out = capsys.readouterr().out
    assert ("log: http://localhost:8080/dags/lectern_ocr/runs/manual__2026-11-22T05%3A23%3A24.393600%2B00%3A00"
            "/tasks/run_stage/mapped/3") in out
    assert "dag_id=lectern_ocr/run_id=manual__2026-11-22T05:23:24.393600+00:00/task_id=run_stage/map_index=3/" in out
    assert out.count("log: ") == 1  # only the stages a DAG run ran


def test_old_releases_beyond_the_retention_are_removed_but_exported_ones_kept(corpus, tmp_path):
    """LECTERN_KEEP_RELEASES: a release the user asks for (release_subject, build_for) removes the subject's older
    releases beyond the newest N; one an export was made of stays (a takedown rebuilds it); 0 keeps every one."""
    import dataclasses

    from lectern.export import export_release
    from lectern.release import release_subject

    settings, store, _ = corpus
    names = ["r1", "r2", "r3", "r4"]
    for name in names[:2]:
        release_subject(settings, "Biology", name)
    export_release(store, "r1", tmp_path / "exported", progress=lambda line: None)
    assert sorted({key.split("/")[1] for key in store.list("releases/")}) == ["r1", "r2"]  # 0: every one kept
    keep_two = dataclasses.replace(settings, keep_releases=2)
    for name in names[2:]:
        manifest = release_subject(keep_two, "Biology", name)
    assert manifest["release"] == "r4" and manifest["stats"]["videos"] == 2
    # r2 went (older than the newest two); r1 is older still but was exported
    assert sorted({key.split("/")[1] for key in store.list("releases/")}) == ["r1", "r3", "r4"]
    assert store.exists(Keys.release("r1", "manifest.json")) and not store.list(Keys.release("r2", ""))
