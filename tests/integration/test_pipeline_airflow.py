"""End to end through Airflow: every phase DAG run with dag.test(), on the real Postgres and the real S3 server,
over the generated demo corpus (real yt-dlp downloads from a loopback server, real WhisperX code paths with tiny
models, real SSIM, real tesseract)."""

from __future__ import annotations

import json
import re
import time

import pytest

from lectern.config import Settings
from lectern.pipeline import artifact_key
from lectern.recipes import PHASES, RECIPES
from lectern.state.db import session_scope
from lectern.state.reports import furthest_rows, stage_rows
from lectern.store import Keys, store_from_settings
from lectern_dev.corpus import backfill_subject_yaml, subject_yaml
from tests.conftest import (
    ROOT,
    assert_published_sample,
    create_bucket,
    create_pg_database,
    drop_pg_database,
    model_environment,
)

pytestmark = pytest.mark.integration


def run_dag(bag, phase: str, conf: dict):
    dag = bag.dags[f"lectern_{phase}"]
    # dag.test() on a reused DAG object carries an earlier run's conf into the tasks' params (seen with
    # Airflow 3.3), so every run states every param: the defaults, then what this run asks for.
    conf = {**{name: param.value for name, param in dag.params.items()}, **conf}
    started = time.monotonic()
    run = dag.test(run_conf=conf)
    return run, time.monotonic() - started


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, pg_server, s3_server, tiny_models, corpus_server, airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    home = tmp_path_factory.mktemp("lectern-home")
    db_name, db_url = create_pg_database()
    bucket = create_bucket(s3_server)
    env = {
        "LECTERN_HOME": str(home),
        "LECTERN_DB_URL": db_url,
        "LECTERN_STORE_URL": f"s3://{bucket}/corpus",
        "LECTERN_S3_ENDPOINT_URL": s3_server,
        "LECTERN_SUBJECTS_DIR": str(home / "subjects"),
        "LECTERN_VIDEOS_PER_TASK": "2",  # GPU phases: two videos per task, one model load
        **model_environment(tiny_models),
    }
    (home / "subjects").mkdir()
    (home / "subjects" / "biology.yaml").write_text(subject_yaml(corpus_server.base_url))
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)  # the stage subprocesses inherit these
        bag = DagBag(dag_folder=str(ROOT / "dags"))
        runs = {}
        for phase in PHASES:
            conf = {"subject": "Biology", **({"release": "e2e"} if phase == "assemble" else {})}
            runs[phase] = run_dag(bag, phase, conf)
        settings = Settings.from_env()
        yield {"runs": runs, "settings": settings, "store": store_from_settings(settings), "bag": bag,
               "patch": patch}
    drop_pg_database(db_name)


def final_rows(settings):
    with session_scope(settings.db_url) as session:
        return furthest_rows(session)


def test_every_phase_dag_run_succeeds(pipeline):
    for phase, (run, _) in pipeline["runs"].items():
        assert run.state == "success", f"lectern_{phase} ended {run.state}"


def test_every_video_ends_in_a_terminal_state_that_says_why(pipeline, demo_corpus):
    truth = demo_corpus[1]
    rows = final_rows(pipeline["settings"])
    assert set(rows) == set(truth["videos"]) | set(truth["broken"])
    broken = rows[truth["broken"][0]]
    assert (broken.stage, broken.status, broken.error_class, broken.error_kind) == (
        "download", "failed", "CorruptMedia", "permanent")
    assert broken.error_message.startswith("ffprobe could not read")
    # Listed by hand, with only its file name for a title: the metadata filter leaves it alone; the judge rejects it
    # on what it says, which is far from every knowledge point.
    off_topic = rows["pasta_recipe"]
    assert (off_topic.stage, off_topic.status) == ("judge", "rejected")
    assert re.fullmatch(r"relevance -?0\.\d\d < 0\.30 \(best point '.+'\)", off_topic.reason)
    assert pipeline["store"].exists(artifact_key("transcribe", "asr", "pasta_recipe"))
    for video_id in set(truth["videos"]) - set(truth["off_topic"]):
        assert (rows[video_id].stage, rows[video_id].status) == ("assemble", "succeeded"), video_id


def test_keyframes_match_the_slides(pipeline, demo_corpus):
    store = pipeline["store"]
    for video_id, info in demo_corpus[1]["videos"].items():
        if video_id in demo_corpus[1]["off_topic"]:
            continue
        clips = store.get_json(artifact_key("keyframes", "clips", video_id))["clips"]
        count = sum(len(c["keyframes"]) for c in clips)
        assert abs(count - len(info["slides"])) <= 1, (video_id, count)
        names = store.list(Keys.video(video_id, "keyframes/"))
        assert len(names) == count
        assert all(re.search(rf"/{video_id}@\d+\.\d_\d+\.\d#\d+\.jpg$", name) for name in names)


def test_every_slide_text_is_found_by_ocr(pipeline, demo_corpus):
    store = pipeline["store"]

    def words(text):
        return set(re.findall(r"[a-z0-9]+", text.lower()))

    for video_id, info in demo_corpus[1]["videos"].items():
        if video_id in demo_corpus[1]["off_topic"]:
            continue
        texts = store.get_json(artifact_key("ocr", "ocr", video_id))["texts"].values()
        for slide in info["slides"]:
            wanted = words(f"{slide['title']} {slide['body']}")
            assert any(wanted <= words(text) for text in texts), (video_id, slide["title"], list(texts))


def test_release_samples_in_the_published_format(pipeline, demo_corpus):
    store = pipeline["store"]
    manifest = store.get_json(Keys.release("e2e", "manifest.json"))
    expected = set(demo_corpus[1]["videos"]) - set(demo_corpus[1]["off_topic"])
    assert {v["id"] for v in manifest["videos"]} == expected
    samples = [json.loads(line) for key in manifest["shards"] for line in store.get_bytes(key).decode().splitlines()]
    assert len(samples) == manifest["stats"]["samples"] >= 1
    # packed across videos as published: every video's keyframes, in release order, each video's end recorded
    clips = [c for v in manifest["videos"]
             for c in store.get_json(artifact_key("keyframes", "clips", v["id"]))["clips"]]
    keyframes = [f["key"] for c in clips for f in c["keyframes"]]
    assert [image for sample in samples for image in sample["images"] if image] == keyframes
    ends = [m["vid"] for sample in samples for m in sample["metadata"] if m.get("end_of_video")]
    assert ends == [v["id"] for v in manifest["videos"]]
    for sample in samples:
        assert_published_sample(sample, manifest["packing"]["tokenizer"])
        kinds = ["image" if image else "text" for image in sample["images"]]
        assert kinds[0] == "image" and kinds.count("text") >= 2  # several keyframes-then-text runs
        assert all(store.exists(image) for image in sample["images"] if image)  # paths of real keyframes
        assert sample["token_num"] > 576 * sample["image_num"]


def test_the_exported_release_passes_the_papers_loader(pipeline, demo_corpus, tmp_path):
    """`lectern export` from the S3 store: the folder the paper's training loader reads, every assertion it makes
    applied (tests/obelics_loader.py), every image opened with PIL, in both layouts."""
    from lectern.export import export_release
    from tests.obelics_loader import ObelicsCorpus, load_all
    from tests.published import SAMPLE_KEYS, VIDEO_META_KEYS, assert_clip_level_file

    store = pipeline["store"]
    manifest = store.get_json(Keys.release("e2e", "manifest.json"))
    for layout, data in (("json", "multimodal_textbook.json"), ("shards", "multimodal_textbook")):
        folder = tmp_path / layout
        info = export_release(store, "e2e", folder, layout=layout, progress=lambda line: None)
        items = load_all(str(folder / data))
        assert len(items) == manifest["stats"]["samples"] == info["samples"]
        assert sum(len(images) for images, _ in items) == manifest["stats"]["images"]
        assert all(image.size == (1280, 720) for images, _ in items for image in images)
        names = sorted(p.relative_to(folder).as_posix() for p in (folder / "dataset_images_interval_7").rglob("*.jpg"))
        assert len(names) == manifest["stats"]["images"]
        assert all(re.fullmatch(r"dataset_images_interval_7/(\w+)/\1@\d+\.\d_\d+\.\d#\d+\.jpg", n) for n in names)
    corpus = ObelicsCorpus(str(folder / data))
    samples = [corpus.sample(i) for i in range(len(corpus))]
    assert all(set(sample) == SAMPLE_KEYS for sample in samples)
    assert_clip_level_file(json.loads((folder / "multimodal_textbook_meta_data.json").read_text()), samples)
    meta = json.loads((folder / "video_meta_data" / "video_meta_data1.json").read_text())
    assert sorted(m["video_id"] for m in meta) == sorted(v["id"] for v in manifest["videos"])
    assert all(VIDEO_META_KEYS <= set(m) and isinstance(m["llm_tiny_scripted_score"], int) for m in meta)


def task_labels(run, phase: str) -> list[str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        return sorted(ti.rendered_map_index for ti in session.query(TaskInstance).filter(
            TaskInstance.dag_id == f"lectern_{phase}", TaskInstance.run_id == run.run_id,
            TaskInstance.task_id == "run_stage"))


def test_each_mapped_task_is_labelled_with_its_video_id(pipeline):
    run = pipeline["runs"]["download"][0]
    assert task_labels(run, "download") == sorted(
        ["photosynthesis", "cell_division", "dna_replication", "pasta_recipe", "mitosis_broken"])
    with session_scope(pipeline["settings"].db_url) as session:
        rows = stage_rows(session, stage="download")
    assert all(r.run_id == run.run_id and r.map_index is not None for r in rows)


def test_gpu_phases_run_two_videos_per_task_with_a_row_each(pipeline):
    run = pipeline["runs"]["transcribe"][0]
    labels = task_labels(run, "transcribe")
    assert sorted(len(label.split(", ")) for label in labels) == [2, 2]  # four videos, two per task
    videos = sorted(v for label in labels for v in label.split(", "))
    assert videos == sorted(["photosynthesis", "cell_division", "dna_replication", "pasta_recipe"])
    with session_scope(pipeline["settings"].db_url) as session:
        rows = stage_rows(session, stage="transcribe")
    assert sorted(r.video_id for r in rows) == videos and all(r.status == "succeeded" for r in rows)
    # the second video of each two-video task found the model loaded already
    loads = sorted(r.metrics["model_load_seconds"] for r in rows)
    assert loads[1] < 1.0 < loads[2]


def test_llm_judges_and_rewrite_recorded_per_video(pipeline):
    store = pipeline["store"]
    with session_scope(pipeline["settings"].db_url) as session:
        rows = stage_rows(session, stage="judge")
    assert sorted(r.video_id for r in rows) == ["cell_division", "dna_replication", "pasta_recipe", "photosynthesis"]
    off_topic = next(r for r in rows if r.video_id == "pasta_recipe")
    assert store.get_json(off_topic.artifacts["judge"])["decision"] == "rejected by relevance"
    for row in (r for r in rows if r.video_id != "pasta_recipe"):
        verdict = store.get_json(row.artifacts["judge"])
        assert verdict["decision"] == "accepted"
        assert verdict["llm_tiny_scripted_score"]["knowledge_density"] == 7.0
        assert verdict["llm_tiny_random_decision"] == "abstain"
        refined = store.get_json(row.artifacts["refined_asr"])
        assert len(refined["segments"]) == sum(refined["counts"].values()) > 0
        clips = store.get_json(artifact_key("keyframes", "clips", row.video_id))["clips"]
        assert all(c["refined_asr"] is not None for c in clips if c["segments"])
        # the published video_meta_data shape
        meta = store.get_json(artifact_key("assemble", "video_meta", row.video_id))
        assert meta["llm_tiny_scripted_scores"] == verdict["llm_tiny_scripted_score"]
        # published: one int, one string
        assert meta["llm_tiny_scripted_score"] == 7 and "###Score: 7###" in meta["llm_response"]
        assert meta["search_keyword"] and meta["subjects"] == ["Biology"] and isinstance(meta["asr is repetive"], bool)


def test_rerun_claims_nothing_and_force_recomputes_without_duplicates(pipeline):
    store, settings, bag = pipeline["store"], pipeline["settings"], pipeline["bag"]
    before = store.list("videos/")
    run, _ = run_dag(bag, "download", {"subject": "Biology"})
    assert run.state == "success"
    assert store.list("videos/") == before  # nothing was ready: nothing redone
    run, _ = run_dag(bag, "keyframes", {"video_ids": ["photosynthesis"], "force": True})
    assert run.state == "success"
    assert store.list("videos/") == before  # same deterministic keys, overwritten in place
    with session_scope(settings.db_url) as session:
        row = {r.stage: r for r in stage_rows(session, video_ids=["photosynthesis"])}
    assert row["keyframes"].status == "succeeded" and row["keyframes"].attempts == 1
    assert row["ocr"].status == "pending"  # new keyframes make the downstream result stale


def test_a_keyframes_run_chooses_the_scene_segmenter_in_its_trigger_form(pipeline):
    store, settings, bag = pipeline["store"], pipeline["settings"], pipeline["bag"]

    def keyframes_row():
        with session_scope(settings.db_url) as session:
            return stage_rows(session, video_ids=["photosynthesis"], stage="keyframes")[0]

    by_sentences = keyframes_row()
    assert by_sentences.metrics["clip_segmenter"] == "asr"
    run, _ = run_dag(bag, "keyframes", {"video_ids": ["photosynthesis"], "force": True, "clip_segmenter": "scene"})
    assert run.state == "success"
    by_scenes = keyframes_row()
    assert by_scenes.status == "succeeded" and by_scenes.run_id == run.run_id
    assert by_scenes.metrics["clip_segmenter"] == "scene" and by_scenes.metrics["scene_method"] == "histogram"
    assert by_scenes.version != by_sentences.version  # recorded as other settings: a stale_only run would see it
    clips = store.get_json(artifact_key("keyframes", "clips", "photosynthesis"))["clips"]
    assert len(clips) >= by_scenes.metrics["scene_cuts"] + 1
    # back to the default for the tests after this one
    run, _ = run_dag(bag, "keyframes", {"video_ids": ["photosynthesis"], "force": True, "clip_segmenter": "asr"})
    assert run.state == "success" and keyframes_row().version == by_sentences.version


def test_rerunning_every_phase_reproduces_the_same_artifacts_and_state(pipeline):
    """Idempotency: each phase forced again for one video, in order, writes byte-identical artifacts (content hash)
    and leaves the same state behind (wall-clock timings live in the state row's metrics, not in artifacts)."""
    import hashlib

    from lectern.runner import EXIT_OK, run_stage

    store, settings, video = pipeline["store"], pipeline["settings"], "cell_division"  # untouched by reruns above

    def snapshot():
        hashes = {key: hashlib.sha256(store.get_bytes(key)).hexdigest() for key in store.list(Keys.video(video, ""))}
        with session_scope(settings.db_url) as session:
            rows = {r.stage: (r.status, r.artifacts, r.version, r.reason) for r in stage_rows(session, [video])}
        return hashes, rows

    before = snapshot()
    assert all(status == "succeeded" for status, *_ in before[1].values())
    for stage in RECIPES["textbook"].stages:
        assert run_stage(stage, video, settings, owner="idempotency-check", force=True) == EXIT_OK, stage
    after = snapshot()
    assert after[1] == before[1]
    changed = sorted(key for key in set(before[0]) | set(after[0]) if before[0].get(key) != after[0].get(key))
    assert changed == [] and len(after[0]) == len(before[0]) > 6


@pytest.fixture(scope="module")
def backfill(pipeline, corpus_server):
    """A new subject, Biochemistry: one new video (enzymes) and one Biology already finished (dna_replication).
    Its YAML is added and every phase DAG is triggered with subject=Biochemistry."""
    settings, bag = pipeline["settings"], pipeline["bag"]
    (settings.subjects_dir / "biochemistry.yaml").write_text(backfill_subject_yaml(corpus_server.base_url))
    with session_scope(settings.db_url) as session:
        before = {(r.video_id, r.stage): (r.status, r.attempts, r.finished_at) for r in stage_rows(session)}
    runs = {}
    for phase in PHASES:
        conf = {"subject": "Biochemistry", **({"release": "e2e-biochemistry"} if phase == "assemble" else {})}
        runs[phase] = run_dag(bag, phase, conf)[0]
    with session_scope(settings.db_url) as session:
        after = {(r.video_id, r.stage): (r.status, r.attempts, r.finished_at) for r in stage_rows(session)}
    return {"runs": runs, "before": before, "after": after}


def test_backfill_runs_only_the_new_subjects_new_videos(backfill):
    assert all(run.state == "success" for run in backfill["runs"].values())
    for phase in ("download", "transcribe", "keyframes", "ocr", "assemble"):
        assert task_labels(backfill["runs"][phase], phase) == ["enzymes"], phase
    new = {key: value for key, value in backfill["after"].items() if key not in backfill["before"]}
    assert {stage for video_id, stage in new if video_id == "enzymes"} == {
        "download", "transcribe", "judge", "keyframes", "ocr", "assemble"}
    assert {video_id for video_id, _ in new} == {"enzymes"}
    assert all(status == "succeeded" and attempts == 1 for status, attempts, _ in new.values())


def test_backfill_links_finished_videos_without_redoing_them(backfill, pipeline):
    changed = [key for key, value in backfill["before"].items() if backfill["after"][key] != value]
    assert changed == []  # no row of another subject's video moved: dna_replication was linked, not redone
    with session_scope(pipeline["settings"].db_url) as session:
        from lectern.state.reports import video_record

        assert set(video_record(session, "dna_replication").subjects) == {"Biology", "Biochemistry"}
    manifest = pipeline["store"].get_json(Keys.release("e2e-biochemistry", "manifest.json"))
    assert manifest["subject"] == "Biochemistry"
    assert sorted(v["id"] for v in manifest["videos"]) == ["dna_replication", "enzymes"]


def test_a_pairs_subject_from_a_manifest_runs_through_its_phase_dags(pipeline, corpus_server, demo_corpus):
    """Video-text pairs on the same phases: a manifest in the short-video dataset's own format, recipe pairs, through
    the discover, download (video and cover), keyframes and caption DAG runs (two videos: one caption task, one
    model load); no transcribe or OCR rows."""
    from PIL import Image

    settings, bag, store = pipeline["settings"], pipeline["bag"], pipeline["store"]
    listed = {"clip_photosynthesis": ("Nature", "How plants make sugar from light: photosynthesis"),
              "clip_cell_division": ("Technology", "How cells divide: mitosis and cell division")}
    for video_id in listed:
        Image.new("RGB", (120, 68), (30, 140, 60)).save(demo_corpus[0] / f"{video_id}.jpg")
    rows = [{"mp4_id": video_id, "mp4_download_url": f"{corpus_server.base_url}/{video_id.removeprefix('clip_')}.mp4"
             "?listed=1", "mp4_time": "0:24", "mp4_background_image_url": f"{corpus_server.base_url}/{video_id}.jpg",
             "mp4_txt_brief": description, "video_label": label} for video_id, (label, description) in listed.items()]
    (settings.subjects_dir / "multimodal_data_info.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (settings.subjects_dir / "short_clips.yaml").write_text(
        "subject: Short clips\nrecipe: pairs\nmanifest: multimodal_data_info.json\n"
        "manifest_columns: short_video_dataset\n")
    runs = {}
    for phase in ("discover", "download", "keyframes", "caption"):
        runs[phase], _ = run_dag(bag, phase, {"subject": "Short clips"})
        assert runs[phase].state == "success", phase
    [label] = task_labels(runs["caption"], "caption")  # one task, one model load, for both videos
    assert sorted(label.split(", ")) == sorted(listed)
    with session_scope(settings.db_url) as session:
        stages = {(r.video_id, r.stage): r.status for r in stage_rows(session, video_ids=list(listed))}
    assert stages == {(v, s): "succeeded" for v in listed for s in ("download", "keyframes", "caption")}
    for video_id in listed:
        clips = store.get_json(artifact_key("caption", "captions", video_id))["clips"]
        assert clips and all(c["caption"] and c["clip_similarity"] is not None for c in clips)
        # the cover, fetched from loopback into S3
        assert store.exists(artifact_key("download", "cover", video_id, extension="jpg"))


def test_the_judge_phase_through_an_openai_compatible_server(pipeline, llm_endpoint):
    """The judge phase DAG with its judge and its rewrite behind an endpoint: llama.cpp's server with SmolLM2-135M
    (real HTTP, real parsing, the state recorded), a forced rerun of two videos. Last in this module: the judge
    settings it sets stay until the module ends."""
    from lectern.stages.judge import judging, llm
    from lectern_dev.llm_server import MODEL_NAME

    settings, bag, store, patch = pipeline["settings"], pipeline["bag"], pipeline["store"], pipeline["patch"]
    model, videos = f"openai:{MODEL_NAME}", ["cell_division", "photosynthesis"]
    for key, value in {"LECTERN_JUDGE_MODELS": model, "LECTERN_REWRITE_MODEL": model,
                       "LECTERN_LLM_BASE_URL": llm_endpoint}.items():
        patch.setenv(key, value)
    run, _ = run_dag(bag, "judge", {"video_ids": videos, "force": True})
    assert run.state == "success"
    with session_scope(settings.db_url) as session:
        rows = stage_rows(session, video_ids=videos, stage="judge")
    assert sorted(r.video_id for r in rows) == videos
    for row in rows:
        assert row.status in ("succeeded", "rejected") and row.run_id == run.run_id and row.attempts == 1
        verdict = store.get_json(row.artifacts["judge"])
        answers = verdict["llm_response"][llm.field_name(model)]
        assert set(answers) == set(judging.CRITERIA) and all(isinstance(a, str) for a in answers.values())
        assert list(verdict["llm_response"]) == ["smollm2_135m_instruct"]  # the endpoint's judge alone
        asked = len(judging.CRITERIA)
        if verdict["decision"] == "accepted":  # what a 135M model decides is not the point: each path is checked
            refined = store.get_json(row.artifacts["refined_asr"])
            assert refined["model"] == model
            asked += sum(1 for s in refined["segments"] if s["asr"])
        assert row.metrics["llm_requests"] == asked and row.metrics["llm_completion_tokens"] > 0
