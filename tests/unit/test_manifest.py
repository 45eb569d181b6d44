"""URL-manifest corpora: rows validated with their line and why, imported as videos found by their label, and
downloaded like searched videos."""

import json
import re

import pytest

from lectern.config import Settings
from lectern.discovery import TaxonomyError, load_subject
from lectern.manifest import ManifestError, load_manifest, url_video_id
from lectern.phase_tasks import prepare_discovery
from lectern.runner import EXIT_OK, run_stage
from lectern.state.db import session_scope
from lectern.state.models import KnowledgePoint, Video, VideoSource, VideoStage
from lectern.state.reports import video_record
from lectern.store import check_video_id
from tests.unit.test_runner import discover

CSV = """url,cover_url,description,label,extra
https://cdn.example.org/clips/1001.mp4,https://cdn.example.org/covers/1001.jpg,A cat jumps onto a table,animals,x
https://cdn.example.org/clips/1002.mp4,,Dough kneaded by hand,cooking,y
https://cdn.example.org/clips/1001.mp4,https://cdn.example.org/covers/1001.jpg,A cat jumps onto a table,animals,x
,https://cdn.example.org/covers/1003.jpg,no url at all,animals,z
ftp://cdn.example.org/clips/1004.mp4,,not http,animals,z
https://cdn.example.org/clips/1005.mp4,javascript:alert(1),a bad cover,animals,z
https://cdn.example.org/clips/1006.mp4,,too,many,fields,here
https://other.example.org/1002.mp4,,same file name elsewhere,cooking,z
https://cdn.example.org/clips/1007.mp4,,A river in spring,,
"""


def test_csv_rows_good_duplicate_and_malformed_each_with_its_line(tmp_path):
    path = tmp_path / "clips.csv"
    path.write_text(CSV)
    manifest = load_manifest(path)
    assert [(r.line, r.video.id, r.label) for r in manifest.rows] == [
        (2, "1001", "animals"), (3, "1002", "cooking"), (10, "1007", "unlabelled")]
    first = manifest.rows[0].video
    assert first.cover_url == "https://cdn.example.org/covers/1001.jpg"
    assert first.description == first.title == "A cat jumps onto a table"
    assert manifest.rows[1].video.cover_url is None
    problems = {p.line: (p.kind, p.message) for p in manifest.problems}
    assert problems[4] == ("duplicate", "video 1001 is line 2 again")
    assert problems[5] == ("malformed", "no url")
    assert "'ftp://cdn.example.org/clips/1004.mp4' is not an http/https URL" in problems[6][1]
    assert problems[7][1].startswith("cover_url 'javascript:alert(1)'")
    assert problems[8] == ("malformed", "6 fields where the header has 5")
    assert "taken by line 3 for another URL" in problems[9][1] and "own id" in problems[9][1]
    assert manifest.summary() == {"rows": 9, "videos": 3, "labels": 3, "duplicates": 1, "malformed": 5}


def test_jsonl_rows_and_their_problems(tmp_path):
    path = tmp_path / "clips.jsonl"
    lines = [json.dumps({"url": "https://cdn.example.org/a.mp4", "label": "sports", "description": "A goal",
                         "id": "clip/a 1"}),
             "{not json",
             json.dumps(["https://cdn.example.org/b.mp4"]),
             json.dumps({"url": "https://cdn.example.org/c.mp4", "label": ["sports"]}),
             "",
             json.dumps({"url": "https://cdn.example.org/d.mp4", "label": "x" * 201}),
             json.dumps({"url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "label": "music", "title": "A song"})]
    path.write_text("\n".join(lines) + "\n")
    manifest = load_manifest(path)
    assert [(r.line, r.video.title) for r in manifest.rows] == [(1, "A goal"), (7, "A song")]
    # a row's own id, sanitised with a hash of the original added; YouTube's id as it is
    assert re.fullmatch(r"clip_a_1-[0-9a-f]{8}", manifest.rows[0].video.id)
    assert manifest.rows[1].video.id == "dQw4w9WgXcQ"
    messages = {p.line: p.message for p in manifest.problems}
    assert messages[2].startswith("not valid JSON")
    assert messages[3] == "a row is a JSON object, not list"
    assert messages[4] == "label must be text, not list"
    assert messages[6] == "label is 201 characters long (at most 200)"
    assert all(p.kind == "malformed" for p in manifest.problems)


@pytest.mark.parametrize("name,text,message", [
    ("none.csv", None, "no such manifest"),
    ("empty.csv", "\n", "empty"),
    ("clips.txt", "url\nhttps://a.example.org/x.mp4\n", "a manifest is .csv, .tsv, .json or .jsonl"),
    ("clips.csv", "link,label\nhttps://a.example.org/x.mp4,a\n", "needs a 'url' column"),
])
def test_unreadable_manifests_are_clear_errors(tmp_path, name, text, message):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(ManifestError, match=message):
        load_manifest(path)


def test_video_ids_follow_yt_dlp():
    assert re.fullmatch(r"My_Clip-[0-9a-f]{8}", url_video_id("https://cdn.example.org/v/My%20Clip.mp4?sig=1"))
    assert url_video_id("https://cdn.example.org/v/clip-1_b.mp4") == "clip-1_b"  # a plain id stays as it is
    assert url_video_id("https://youtu.be/dQw4w9WgXcQ") == "dQw4w9WgXcQ"


def test_ids_that_sanitise_alike_stay_different_videos(tmp_path):
    """'talk.1' and 'talk:1' both sanitise to 'talk_1', and long ids sharing their first 64 characters to one: each
    must stay its own video, not be linked to the first one's URL."""
    long = "lecture-" + "x" * 70
    path = tmp_path / "talks.csv"
    path.write_text("url,id\n" + "".join(f"https://cdn.example.org/{n}.mp4,{video_id}\n" for n, video_id in
                                         enumerate(["talk.1", "talk:1", long + "a", long + "b", "talk_1"])))
    manifest = load_manifest(path)
    assert not manifest.problems
    ids = [row.video.id for row in manifest.rows]
    assert len(set(ids)) == 5 and ids[4] == "talk_1"
    assert all(check_video_id(video_id) for video_id in ids)


def subject_with_manifest(tmp_path, manifest_name: str, rows: str, extra: str = "") -> Settings:
    subjects = tmp_path / "subjects"
    subjects.mkdir(exist_ok=True)
    (subjects / manifest_name).write_text(rows)
    (subjects / "short_videos.yaml").write_text(f"subject: Short videos\nmanifest: {manifest_name}\n{extra}")
    return subjects


def test_a_subject_yaml_names_its_manifest_and_its_labels_are_its_points(tmp_path):
    subjects = subject_with_manifest(tmp_path, "clips.csv", CSV)
    spec = load_subject(subjects / "short_videos.yaml")
    assert spec.name == "Short videos" and spec.manifest.path == subjects / "clips.csv" and spec.recipe == "textbook"
    assert [(p.path, p.query, p.urls) for p in spec.points] == [("animals", "animals", ()), ("cooking", "cooking", ()),
                                                           ("unlabelled", "unlabelled", ())]
    (subjects / "short_videos.yaml").write_text("subject: S\nmanifest: clips.csv\ncourses: [{name: C, points: [p]}]\n")
    with pytest.raises(TaxonomyError, match="not both"):
        load_subject(subjects / "short_videos.yaml")
    (subjects / "short_videos.yaml").write_text("subject: S\nmanifest: missing.jsonl\n")
    with pytest.raises(TaxonomyError, match="no such manifest"):
        load_subject(subjects / "short_videos.yaml")


def test_import_records_videos_found_by_their_label_once_however_often_it_runs(tmp_path, db_url, caplog):
    subject_with_manifest(tmp_path, "clips.csv", CSV)
    settings = Settings.from_env({"LECTERN_HOME": str(tmp_path), "LECTERN_DB_URL": db_url})
    with caplog.at_level("INFO", logger="lectern"):
        assert prepare_discovery(settings, "Short videos") == []  # nothing to search
    assert "clips.csv: line 4: duplicate: video 1001 is line 2 again" in caplog.text
    assert "clips.csv: line 5: malformed: no url" in caplog.text
    assert prepare_discovery(settings, "Short videos", force=True) == []  # again, and forced: nothing new
    with session_scope(db_url) as session:
        videos = {v.id: v for v in session.query(Video)}
        assert sorted(videos) == ["1001", "1002", "1007"]
        assert videos["1001"].cover_url == "https://cdn.example.org/covers/1001.jpg"
        assert videos["1002"].description == "Dough kneaded by hand"
        links = sorted((s.video_id, s.point.name) for s in session.query(VideoSource))
        assert links == [("1001", "animals"), ("1002", "cooking"), ("1007", "unlabelled")]
        assert sorted(r.video_id for r in session.query(VideoStage)) == ["1001", "1002", "1007"]  # one download each
        assert all(p.search_metrics["manifest"].endswith("clips.csv") for p in session.query(KnowledgePoint))
        record = video_record(session, "1001")
    assert record.labels == ("animals",) and record.cover_url.endswith("1001.jpg")


def test_a_manifest_video_is_downloaded_like_a_searched_one_and_shares_its_state(tmp_path, db_url, corpus_server):
    url = f"{corpus_server.base_url}/photosynthesis.mp4"
    rows = json.dumps({"url": url, "label": "biology", "description": "Light into sugar",
                       "cover_url": f"{corpus_server.base_url}/cover.jpg"}) + "\n"
    subject_with_manifest(tmp_path, "clips.jsonl", rows)
    settings = Settings.from_env({"LECTERN_HOME": str(tmp_path), "LECTERN_DB_URL": db_url,
                                  "LECTERN_DOWNLOAD_ALLOW_NETWORKS": "127.0.0.0/8"})
    discover(db_url, ("photosynthesis", url))  # a search found it first
    prepare_discovery(settings, "Short videos")
    assert run_stage("download", "photosynthesis", settings, owner="run-1") == EXIT_OK
    with session_scope(db_url) as session:
        assert session.query(Video).count() == 1
        row = session.get(VideoStage, ("photosynthesis", "download"))
        assert row.status == "succeeded" and row.metrics["duration_s"] > 20  # probed by ffprobe
        record = video_record(session, "photosynthesis")
    assert record.labels == ("biology",) and set(record.points) == {"Photosynthesis", "biology"}


SHORT_VIDEO_ROWS = [  # multimodal_data_info.json as the short-video dataset publishes it: JSON lines
    {"mp4_id": "80328682", "mp4_download_url": "https://cdn.example.org/080328682_main_xl.mp4", "mp4_time": "0:16",
     "mp4_background_image_url": "https://cdn.example.org/080328682_iconl.jpeg",
     "mp4_txt_brief": " Woman in swimsuit and cover up walking at the beach", "video_label": "Beach"},
    {"mp4_id": "80328683", "mp4_download_url": "https://cdn.example.org/080328683_main_xl.mp4",
     "mp4_time": "1:02:03", "mp4_background_image_url": "", "mp4_txt_brief": "Storm clouds", "video_label": "Clouds"},
    {"mp4_id": "80328684", "mp4_download_url": "https://cdn.example.org/080328684_main_xl.mp4",
     "mp4_time": "about a minute", "mp4_txt_brief": "?", "video_label": "Clouds"},
    {"mp4_id": "80328685", "mp4_download_url": "https://cdn.example.org/080328685_main_xl.mp4", "mp4_time": "12",
     "mp4_txt_brief": "Waves at dusk", "video_label": "海滩"},  # a copy labelled in Chinese
]


def test_the_short_video_datasets_manifest_imports_unchanged(tmp_path):
    manifest = tmp_path / "multimodal_data_info.json"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in SHORT_VIDEO_ROWS))
    subject = tmp_path / "short_videos.yaml"
    subject.write_text("subject: Short videos\nrecipe: pairs\nmanifest: multimodal_data_info.json\n"
                       "manifest_columns: short_video_dataset\n")
    spec = load_subject(subject)
    beach, clouds, waves = (row.video for row in spec.manifest.rows)
    assert (beach.id, beach.url, beach.duration_s) == ("80328682", SHORT_VIDEO_ROWS[0]["mp4_download_url"], 16.0)
    assert beach.cover_url == "https://cdn.example.org/080328682_iconl.jpeg"
    assert beach.description == "Woman in swimsuit and cover up walking at the beach"
    assert [row.label for row in spec.manifest.rows] == ["Beach", "Clouds", "Beach"]  # 海滩 is Beach
    assert waves.duration_s == 12.0
    assert (clouds.duration_s, clouds.cover_url) == (3723.0, None)
    assert [str(p) for p in spec.manifest.problems] == [
        "line 3: malformed: duration 'about a minute' is not seconds or [[H:]M:]S"]
    assert [p.name for p in spec.points] == ["Beach", "Clouds"]


def test_the_short_video_datasets_31_categories_and_label_names():
    from lectern.manifest import SHORT_VIDEO_CATEGORIES, label_names

    assert len(SHORT_VIDEO_CATEGORIES) == 31 and SHORT_VIDEO_CATEGORIES["Underwater"] == "水下摄影"
    assert label_names("short_video_dataset", {"Strand": "Beach"}, "s.yaml")["Strand"] == "Beach"
    assert label_names("short_video_dataset", None, "s.yaml")["电影镜头"] == "Film"
    assert label_names(None, None, "s.yaml") == {}
    with pytest.raises(ManifestError, match="label_names maps"):
        label_names(None, ["Beach"], "s.yaml")


def test_a_mapping_names_other_columns_and_a_json_array_is_a_manifest(tmp_path):
    path = tmp_path / "clips.json"
    path.write_text(json.dumps([{"video": "https://cdn.example.org/a.mp4", "category": "sports", "seconds": 12.5},
                                "not an object"]))
    manifest = load_manifest(path, columns={"url": "video", "label": "category", "duration": "seconds"})
    [row] = manifest.rows
    assert (row.video.id, row.label, row.video.duration_s) == ("a", "sports", 12.5)
    assert [str(p) for p in manifest.problems] == ["line 2: malformed: a row is a JSON object, not str"]
    csv_path = tmp_path / "clips.csv"
    csv_path.write_text("Video_URL,Category\nhttps://cdn.example.org/b.mp4,news\n")
    [row] = load_manifest(csv_path, columns={"url": "Video_URL", "label": "Category"}).rows
    assert (row.video.id, row.label) == ("b", "news")
    with pytest.raises(ManifestError, match="needs a 'url' column"):
        load_manifest(csv_path)


@pytest.mark.parametrize("columns, message", [
    ("imagenet", "manifest_columns 'imagenet' is not one of short_video_dataset"),
    ("{link: video}", "manifest_columns: link not among url"),
    ("[url]", "manifest_columns maps Lectern's fields to column names"),
])
def test_a_bad_column_mapping_is_a_clear_error(tmp_path, columns, message):
    (tmp_path / "clips.jsonl").write_text('{"url": "https://cdn.example.org/a.mp4"}\n')
    subject = tmp_path / "s.yaml"
    subject.write_text(f"subject: S\nmanifest: clips.jsonl\nmanifest_columns: {columns}\n")
    with pytest.raises(TaxonomyError, match=re.escape(message)):
        load_subject(subject)
