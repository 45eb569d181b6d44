"""Local video folders as a source (lectern/local_files.py): a point's `videos_dir` and a manifest's local rows are
found, given collision-safe ids, never pre-filtered on their file-name titles, and read by the download stage
only inside the folders the subject names, with the same ffprobe checks as a download."""

import os
import shutil
import subprocess
from dataclasses import replace

import pytest

from lectern.config import Settings
from lectern.discovery import TaxonomyError, discover_point, load_subject
from lectern.errors import BlockedURL, CorruptMedia, VideoUnavailable
from lectern.local_files import media_files
from lectern.manifest import load_manifest
from lectern.pipeline import artifact_key
from lectern.stages.download import run as download
from lectern.state.catalog import sync_subject
from lectern.state.db import migrate, session_scope
from lectern.state.reports import video_record
from lectern.store import LocalStore


@pytest.fixture
def lectures(tmp_path, demo_corpus):
    """A folder of lectures as a user keeps them: a good video, a truncated one, an audio-only file, a second file
    of the same name in another folder, notes and a hidden file."""
    corpus = demo_corpus[0]
    root = tmp_path / "lectures"
    (root / "week1").mkdir(parents=True)
    (root / "week2").mkdir()
    shutil.copy(corpus / "photosynthesis.mp4", root / "week1" / "photosynthesis.mp4")
    shutil.copy(corpus / "mitosis_broken.mp4", root / "week1" / "broken.mp4")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(corpus / "dna_replication.mp4"), "-vn", "-c:a",
                    "copy", str(root / "week2" / "audio_only.m4a")], check=True)
    shutil.copy(corpus / "cell_division.mp4", root / "week2" / "photosynthesis.mp4")
    (root / "notes.txt").write_text("slides are on the course page")
    (root / ".hidden.mp4").write_bytes(b"")
    return root


@pytest.fixture
def state(tmp_path):
    settings = Settings.from_env({"LECTERN_HOME": str(tmp_path / "home")})
    migrate(settings.db_url)
    return settings


def subject_yaml(tmp_path, videos_dir: str, extra: str = "") -> object:
    path = tmp_path / "subjects" / "my_lectures.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"subject: My lectures\n{extra}courses:\n  - name: Biology\n    points:\n"
                    f"      - name: Cells\n        videos_dir: {videos_dir}\n")
    return path


def discover(settings, spec):
    with session_scope(settings.db_url) as session:
        [point_id] = sync_subject(session, spec.name, spec.points, spec.recipe, spec.prefilter)
    return point_id, discover_point(point_id, settings)


def test_a_folder_lists_its_media_files_and_leaves_the_rest_out(lectures):
    assert [p.relative_to(lectures).as_posix() for p in media_files(str(lectures))] == [
        "week1/broken.mp4", "week1/photosynthesis.mp4", "week2/audio_only.m4a", "week2/photosynthesis.mp4"]
    assert [p.name for p in media_files(str(lectures / "week*" / "*.mp4"))] == [
        "broken.mp4", "photosynthesis.mp4", "photosynthesis.mp4"]
    with pytest.raises(FileNotFoundError, match="no such folder"):
        media_files(str(lectures / "missing"))


def test_videos_dir_is_relative_to_the_subject_file_and_must_be_a_path(tmp_path, lectures):
    spec = load_subject(subject_yaml(tmp_path, "../lectures"))
    assert spec.points[0].videos_dir == str(lectures)
    with pytest.raises(TaxonomyError, match="'videos_dir' must be a folder path"):
        load_subject(subject_yaml(tmp_path, "[a, b]"))


def test_files_become_videos_with_collision_safe_ids_and_rediscovery_keeps_them(tmp_path, lectures, state):
    spec = load_subject(subject_yaml(tmp_path, str(lectures)))
    point_id, result = discover(state, spec)
    assert result["new_videos"] == 4
    with session_scope(state.db_url) as session:
        records = {v: video_record(session, v) for v in ("audio_only", "broken", "photosynthesis")}
        from lectern.state.models import Video

        ids = {v.id: v.url for v in session.query(Video)}
    assert ids["photosynthesis"] == (lectures / "week1" / "photosynthesis.mp4").as_uri()
    [second] = [v for v in ids if v.startswith("photosynthesis-")]  # the other photosynthesis.mp4: its own id
    assert ids[second] == (lectures / "week2" / "photosynthesis.mp4").as_uri()
    # listed by hand, with only the file name as title: never judged on metadata
    assert not records["broken"].metadata_judged and records["broken"].local_roots == (str(lectures),)
    # a new file in the folder is found by the next discovery; the known ones keep their ids
    shutil.copy(lectures / "week1" / "photosynthesis.mp4", lectures / "week2" / "late.mp4")
    assert discover_point(point_id, state)["new_videos"] == 1
    with session_scope(state.db_url) as session:
        late = (lectures / "week2" / "late.mp4").as_uri()
        assert {v.id: v.url for v in session.query(Video)} == {**ids, "late": late}


def test_prefilter_true_judges_the_folder_too(tmp_path, lectures, state):
    spec = load_subject(subject_yaml(tmp_path, str(lectures), "prefilter: true\n"))
    discover(state, spec)
    with session_scope(state.db_url) as session:
        assert video_record(session, "broken").metadata_judged


@pytest.fixture
def local_records(tmp_path, lectures, state):
    discover(state, load_subject(subject_yaml(tmp_path, str(lectures))))

    def record(video_id):
        with session_scope(state.db_url) as session:
            return video_record(session, video_id)

    return record


def test_the_download_stage_reads_a_good_file_where_it_is(local_records, tmp_path, state):
    store = LocalStore(tmp_path / "store")
    result = download.run(local_records("photosynthesis"), store, state)
    assert result.status == "succeeded" and result.metrics["has_audio"] and result.metrics["video_codec"] == "h264"
    assert result.metrics["duration_s"] == pytest.approx(24, abs=0.5)
    assert store.exists(artifact_key("download", "source", "photosynthesis"))


def test_a_broken_file_fails_and_an_audio_only_file_is_rejected(local_records, tmp_path, state):
    store = LocalStore(tmp_path / "store")
    with pytest.raises(CorruptMedia, match="ffprobe could not read broken.mp4"):
        download.run(local_records("broken"), store, state)
    result = download.run(local_records("audio_only"), store, state)
    assert result.status == "rejected" and result.reason == "no video stream"
    assert store.list("videos/") == []


def test_only_the_named_folders_are_read(local_records, lectures, tmp_path, state):
    store = LocalStore(tmp_path / "store")
    secret = tmp_path / "elsewhere" / "secret.mp4"
    secret.parent.mkdir()
    shutil.copy(lectures / "week1" / "photosynthesis.mp4", secret)
    video = local_records("photosynthesis")
    with pytest.raises(BlockedURL, match="outside the folders its subject names"):
        download.run(replace(video, url=secret.as_uri()), store, state)
    with pytest.raises(BlockedURL, match="outside"):  # `..` out of the folder
        download.run(replace(video, url=(lectures / ".." / "elsewhere" / "secret.mp4").as_uri()), store, state)
    os.symlink(secret, lectures / "week1" / "link.mp4")  # a link inside that leads out
    with pytest.raises(BlockedURL, match="outside"):
        download.run(replace(video, url=(lectures / "week1" / "link.mp4").as_uri()), store, state)
    (lectures / "week1" / "photosynthesis.mp4").unlink()
    with pytest.raises(VideoUnavailable, match="no such file"):
        download.run(video, store, state)
    assert store.list("videos/") == []


def test_a_manifest_row_can_be_a_local_path_inside_its_folder(tmp_path, lectures):
    manifest = lectures / "manifest.jsonl"
    manifest.write_text('{"url": "week1/photosynthesis.mp4", "label": "Biology", "description": "light"}\n'
                        '{"url": "week2/photosynthesis.mp4", "label": "Biology"}\n'
                        '{"url": "../outside.mp4", "label": "Biology"}\n'
                        f'{{"url": "{lectures / "week2" / "audio_only.m4a"}", "label": "Biology", "id": "talk"}}\n')
    loaded = load_manifest(manifest)
    assert [(r.video.id, r.video.url) for r in loaded.rows] == [
        ("photosynthesis", (lectures / "week1" / "photosynthesis.mp4").as_uri()),
        ("photosynthesis", (lectures / "week2" / "photosynthesis.mp4").as_uri()),  # its own id when recorded
        ("talk", (lectures / "week2" / "audio_only.m4a").as_uri())]
    assert [str(p) for p in loaded.problems] == [
        f"line 3: malformed: url '../outside.mp4' is a local path outside the manifest's folder {lectures}"]
    spec_file = tmp_path / "subjects" / "local.yaml"
    spec_file.parent.mkdir(exist_ok=True)
    spec_file.write_text(f"subject: Local\nmanifest: {manifest}\n")
    assert [p.videos_dir for p in load_subject(spec_file).points] == [str(lectures)]
