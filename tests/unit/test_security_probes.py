"""Regressions for the defects a review found by probing Lectern as an attacker and as a careless user would (issue
36; docs/reliability.md, "Security probes", lists each with what it tried and what happens now). The plugin's login
is tested against a real Airflow API app in tests/ui/test_plugin_auth.py."""

import io
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from PIL import Image

from lectern.cli import main
from lectern.config import Settings
from lectern.discovery import discover_point, subject_file
from lectern.errors import BlockedURL, DownloadFailed
from lectern.export import export_release, reroot
from lectern.local_files import media_files
from lectern.manifest import ManifestError, _site_extractors, load_manifest, url_video_id
from lectern.phase_tasks import prepare_discovery
from lectern.pipeline import artifact_key
from lectern.release import build_release
from lectern.stage_types import VideoRecord
from lectern.stages.download import run as download
from lectern.stages.download.urls import check_url, inside
from lectern.state.db import migrate, session_scope
from lectern.state.models import Subject, Video, VideoStage
from lectern.state.reports import video_record
from lectern.store import Keys, LocalStore
from tests.conftest import http_server
from tests.obelics_loader import load_all
from tests.unit.test_release import corpus, put_assembled  # noqa: F401  (the fixture)


def local_video(path: Path, root: Path, video_id: str = "talk", cover_url: str | None = None) -> VideoRecord:
    """A local file found in `root`, as discovery records it (listed by hand: not judged on its metadata)."""
    return VideoRecord(id=video_id, url=path.absolute().as_uri(), title=video_id, description="", duration_s=None,
                       metadata_judged=False, local_roots=(str(root),), cover_url=cover_url)


def discover_subject(settings: Settings, name: str, yaml: str) -> None:
    """Discovery of a subject as its phase runs it: its YAML (and a manifest beside it) read, its points searched."""
    settings.subjects_dir.mkdir(parents=True, exist_ok=True)
    subject_file(settings, name).write_text(f"subject: {name}\n{yaml}")
    for point_id, _ in prepare_discovery(settings, name):
        discover_point(point_id, settings)


def count_videos(settings: Settings) -> int:
    with session_scope(settings.db_url) as session:
        return session.query(Video).count()


@pytest.fixture
def settings(db_url, tmp_path):
    values = {"LECTERN_HOME": str(tmp_path / "home"), "LECTERN_DB_URL": db_url,
              "LECTERN_DOWNLOAD_ALLOW_NETWORKS": "127.0.0.0/8"}
    migrate(db_url)
    return Settings.from_env(values)


@pytest.fixture
def video_file(demo_corpus) -> Path:
    return demo_corpus[0] / "photosynthesis.mp4"


# --- 2. a glob `videos_dir` and symbolic links ------------------------------------------------------------------

def test_a_glob_videos_dir_is_held_to_its_base_folder_like_a_plain_folder(tmp_path, video_file, settings):
    vids, outside = tmp_path / "vids", tmp_path / "outside"
    vids.mkdir()
    (outside / "deep").mkdir(parents=True)
    shutil.copy(video_file, vids / "good.mp4")
    shutil.copy(video_file, outside / "secret.mp4")
    shutil.copy(video_file, outside / "deep" / "inner.mp4")
    os.symlink(outside / "secret.mp4", vids / "evil.mp4")  # a file link that leads out
    os.symlink(outside / "deep", vids / "linked")  # a folder link that `**` follows
    one_level, recursive = str(vids / "*.mp4"), str(vids / "**" / "*.mp4")
    assert [p.name for p in media_files(one_level)] == ["good.mp4"]
    assert [p.name for p in media_files(recursive)] == ["good.mp4"]
    assert [p.name for p in media_files(str(vids))] == ["good.mp4"]  # the plain folder's rule, as before
    assert inside(vids / "good.mp4", one_level) and not inside(vids / "evil.mp4", one_level)
    assert not inside(vids / "linked" / "inner.mp4", recursive)
    store = LocalStore(tmp_path / "store")
    with pytest.raises(BlockedURL, match="outside the folders its subject names"):
        download.run(replace(local_video(vids / "evil.mp4", vids, "evil"), local_roots=(one_level,)), store, settings)
    assert store.list("videos/") == []


# --- 3. local files and the size cap ------------------------------------------------------------------------------

def test_a_local_file_is_held_to_the_download_size_cap(tmp_path, video_file, settings):
    folder = tmp_path / "lectures"
    folder.mkdir()
    sparse = folder / "huge.mp4"
    shutil.copy(video_file, sparse)
    with open(sparse, "r+b") as handle:  # a good video, 60 MB as the file system says, its tail a hole on disk
        handle.truncate(60 * 2**20)
    capped = replace(settings, max_download_mb=1.0)
    store = LocalStore(tmp_path / "store")
    result = download.run(local_video(sparse, folder), store, capped)
    assert result.status == "rejected" and result.reason == "size filter: larger than 1 MB"
    assert store.list("videos/") == []


# --- 4. a decompression bomb as a cover ---------------------------------------------------------------------------

def test_an_oversized_cover_is_recorded_and_the_video_kept(tmp_path, video_file, settings):
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")  # ~50 KB of PNG that decodes to 400 megapixels
    assert len(bomb.getvalue()) < 100_000

    class Cover(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(bomb.getvalue())

        def log_message(self, *args):
            pass

    folder = tmp_path / "lectures"
    folder.mkdir()
    shutil.copy(video_file, folder / "talk.mp4")
    store = LocalStore(tmp_path / "store")
    with http_server(Cover) as url:
        result = download.run(local_video(folder / "talk.mp4", folder, cover_url=f"{url}/cover.png"), store, settings)
    assert result.status == "succeeded", result.reason
    assert "pixels" in result.metrics["cover_error"] and "cover" not in result.artifacts
    assert store.exists(artifact_key("download", "source", "talk"))


# --- 5. export into folders it did not write ----------------------------------------------------------------------

def test_export_refuses_a_folder_of_someone_elses_files_and_never_deletes_them(corpus, tmp_path, capsys):  # noqa: F811
    settings, store, _ = corpus
    build_release(settings, name="r1")
    theirs = tmp_path / "published"
    (theirs / "dataset_images_interval_7" / "abc").mkdir(parents=True)
    (theirs / "dataset_images_interval_7" / "abc" / "abc@0.0_9.0#1.jpg").write_bytes(b"their image")
    (theirs / "multimodal_textbook.json").write_text("[their samples]")
    assert main(["export", "r1", str(theirs)]) == 2
    assert "holds files that no export of Lectern's wrote" in capsys.readouterr().err
    assert (theirs / "multimodal_textbook.json").read_text() == "[their samples]"
    assert main(["export", "r1", str(theirs), "--force"]) == 0  # told to: written beside them
    assert (theirs / "dataset_images_interval_7" / "abc" / "abc@0.0_9.0#1.jpg").read_bytes() == b"their image"
    assert (theirs / "dataset_images_interval_7" / "v1" / "v1@0.0_1.0#1.jpg").exists()
    assert main(["export", "r1", str(theirs)]) == 0  # its own folder now: exported again, theirs kept
    assert (theirs / "dataset_images_interval_7" / "abc" / "abc@0.0_9.0#1.jpg").read_bytes() == b"their image"


def test_export_refuses_the_root_and_the_home_folder_and_a_second_export_at_once(corpus, tmp_path, monkeypatch):  # noqa: F811
    import fcntl

    settings, store, _ = corpus
    build_release(settings, name="r1")
    with pytest.raises(ValueError, match="the root folder"):
        export_release(store, "r1", "/")
    home = tmp_path / "home-of-user"
    (home / "notes").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(ValueError, match="your home folder"):
        export_release(store, "r1", home)
    folder = tmp_path / "export"
    export_release(store, "r1", folder, progress=lambda line: None)
    with open(folder / ".export.lock") as lock:  # another export holds the folder
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(ValueError, match="another export is writing"):
            export_release(store, "r1", folder)
    assert export_release(store, "r1", folder, progress=lambda line: None)["images"] == 2


def test_an_export_killed_before_it_finished_is_its_own_folder_to_the_rerun(corpus, tmp_path):  # noqa: F811
    settings, store, _ = corpus
    build_release(settings, name="r1")
    folder = tmp_path / "export"
    killed = subprocess.run(
        [sys.executable, "-c", "import os, sys; from lectern.export import export_release; "
                               "from lectern.store import LocalStore; "
                               "export_release(LocalStore(sys.argv[1]), 'r1', sys.argv[2], "
                               "progress=lambda line: os._exit(9))", str(store.root), str(folder)])
    assert killed.returncode == 9 and (folder / "export.json").exists()
    assert export_release(store, "r1", folder, progress=lambda line: None)["images"] == 2
    assert sum(len(images) for images, _ in load_all(str(folder / "multimodal_textbook.json"))) == 2


# --- 6. NUL characters and Postgres -------------------------------------------------------------------------------

def test_a_nul_in_a_manifest_title_is_stored_without_it(settings):
    settings.subjects_dir.mkdir(parents=True)
    manifest = settings.subjects_dir / "videos.jsonl"
    manifest.write_text("".join(json.dumps({"url": f"https://cdn.example.org/v{n}.mp4", "label": "Biology",
                                            "title": f"Lecture\u0000 {n}", "description": "cells\u0000"}) + "\n"
                                for n in range(6)))
    discover_subject(settings, "Nul", "manifest: videos.jsonl\n")
    assert count_videos(settings) == 6
    with session_scope(settings.db_url) as session:
        titles = sorted(v.title for v in session.query(Video))
    assert titles == [f"Lecture {n}" for n in range(6)]


class _RawStatus(BaseHTTPRequestHandler):
    """Answers with a status line that holds a NUL (and a terminal escape): what a hostile server may send."""

    def do_GET(self):
        self.wfile.write(b"HTTP/1.1 404 Not\x00Found \x1b[2J\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def log_message(self, *args):
        pass


def test_a_hostile_servers_message_is_recorded_as_a_failure(settings, tmp_path):
    from tests.unit.test_runner import discover

    with http_server(_RawStatus) as url:
        discover(settings.db_url, ("hostile", f"{url}/video.mp4"))
        env = {**os.environ, "LECTERN_HOME": str(tmp_path / "home"), "LECTERN_DB_URL": settings.db_url,
               "LECTERN_DOWNLOAD_ALLOW_NETWORKS": "127.0.0.0/8"}
        proc = subprocess.run([sys.executable, "-m", "lectern", "stage", "download", "--video-id", "hostile"],
                              env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (2, 75), proc.stderr  # a recorded failure, not a crash
    assert "\x1b" not in proc.stderr + proc.stdout
    with session_scope(settings.db_url) as session:
        row = session.get(VideoStage, ("hostile", "download"))
        assert row.status == "failed" and row.lease_owner is None and "404" in row.error_message
        assert "\x00" not in row.error_message and "\x1b" not in row.error_message


# --- 7. the page yt-dlp reads -------------------------------------------------------------------------------------

def test_a_huge_page_and_a_slow_page_are_cut_off(tmp_path):
    sent = {"bytes": 0}

    class Pages(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            try:
                if self.path == "/slow":
                    for _ in range(60):  # a byte at a time, forever as far as a socket timeout sees
                        self.wfile.write(b"<p>.</p>")
                        self.wfile.flush()
                        time.sleep(0.5)
                    return
                block = b"<p>" + b"a" * 65536 + b"</p>\n"
                for _ in range(400 * 16):  # 400 MB
                    self.wfile.write(block)
                    sent["bytes"] += len(block)
            except OSError:
                pass

        def log_message(self, *args):
            pass

    settings = Settings.from_env({"LECTERN_HOME": str(tmp_path), "LECTERN_DOWNLOAD_ALLOW_NETWORKS": "127.0.0.0/8",
                                  "LECTERN_MAX_PAGE_MB": "1", "LECTERN_PAGE_TIMEOUT_S": "3"})
    with http_server(Pages) as url:
        with pytest.raises(download.OverSizeCap, match="larger than 1 MB"):
            download.fetch(f"{url}/page", tmp_path, settings)
        started = time.monotonic()
        with pytest.raises(DownloadFailed, match="took longer than 3 s"):
            download.fetch(f"{url}/slow", tmp_path, settings)
        assert time.monotonic() - started < 20  # not the 30 s the page takes to trickle in
    assert sent["bytes"] < 64 * 2**20  # the reader stopped: the server could not send the 400 MB


# --- 8. the loader's image token in text --------------------------------------------------------------------------

def test_an_image_token_said_in_a_lecture_does_not_break_the_papers_loader(corpus, tmp_path):  # noqa: F811
    settings, store, _ = corpus
    put_assembled(store, settings, "v1", text="Draw an <image> tag here.")
    build_release(settings, name="tokens")
    export_release(store, "tokens", tmp_path / "export", progress=lambda line: None)
    items = load_all(str(tmp_path / "export" / "multimodal_textbook.json"))
    texts = " ".join(text for _, text in items)
    assert "Draw an [image] tag here." in texts and sum(len(images) for images, _ in items) == 2


# --- 9. bad encodings -----------------------------------------------------------------------------------------

def test_a_file_name_that_is_not_utf8_is_a_video_like_the_others(tmp_path, video_file, settings):
    folder = tmp_path / "lectures"
    folder.mkdir()
    shutil.copy(video_file, folder / "good.mp4")
    shutil.copy(video_file, os.fsdecode(os.fsencode(str(folder)) + b"/lect\xff\xfe.mp4"))
    discover_subject(settings, "Bytes", f"courses:\n  - name: Biology\n    points:\n      - name: Cells\n"
                                        f"        videos_dir: {folder}\n")
    assert count_videos(settings) == 2
    with session_scope(settings.db_url) as session:
        [odd] = [v for v in session.query(Video) if v.id != "good"]
        record = video_record(session, odd.id)
    result = download.run(record, LocalStore(tmp_path / "store"), settings)  # the file is found by its own bytes
    assert result.status == "succeeded", result.reason


def test_a_manifest_that_is_not_utf8_is_an_error_naming_the_line(tmp_path):
    manifest = tmp_path / "latin1.jsonl"
    manifest.write_bytes(b'{"url": "https://a.example.org/1.mp4"}\n{"url": "https://a.example.org/2.mp4", '
                         b'"title": "Caf\xe9"}\n')
    with pytest.raises(ManifestError, match=r"latin1.jsonl: line 2 is not UTF-8 text \(byte 0xe9 at column 53\)"):
        load_manifest(manifest)


# --- 10. a takedown reaches every copy ------------------------------------------------------------------------

def everything_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_a_takedown_leaves_no_byte_of_the_video_under_the_home(corpus, tmp_path, capsys):  # noqa: F811
    settings, store, _ = corpus
    secret, colour = "quokka zebrafish migration", (12, 200, 40)
    key = put_assembled(store, settings, "v2", colour=colour, text=secret)
    jpeg = store.get_bytes(key)
    build_release(settings, name="r1")
    main(["export", "r1", str(tmp_path / "export" / "r1")])
    before = everything_under(tmp_path)
    assert secret.encode() in before and jpeg in before  # the check finds what it looks for
    assert main(["forget", "v2", "--reason", "takedown request"]) == 0
    out = capsys.readouterr().out
    assert "release r1: rebuilt without it" in out and f"export {tmp_path / 'export' / 'r1'}: written again" in out
    after = everything_under(tmp_path)
    assert secret.encode() not in after and jpeg not in after
    [(images, text)] = load_all(str(tmp_path / "export" / "r1" / "multimodal_textbook.json"))
    assert text == "<image> v1 text" and len(images) == 1
    assert store.get_json(Keys.release("r1", "manifest.json"))["taken_down"] == ["v2"]


# --- 11. untrusted text in stats.md -------------------------------------------------------------------------------

def test_subject_names_and_labels_are_escaped_in_stats_md(corpus):  # noqa: F811
    from lectern.stats import category_markdown

    settings, store, _ = corpus
    hostile = "| <img src=x onerror=alert(1)> | x"
    with session_scope(settings.db_url) as session:
        session.query(Subject).update({Subject.name: hostile})
    build_release(settings, name="escaped")
    stats = store.get_bytes(Keys.release("escaped", "stats.md")).decode()
    assert "<img" not in stats and "&lt;img src=x onerror=alert(1)&gt;" in stats
    row = next(line for line in stats.splitlines() if "onerror" in line)
    assert row.replace("\\|", "").count("|") == 9  # the per-subject table's 8 columns, not more
    table = "\n".join(category_markdown({hostile: {"videos": 1, "hours": 0.1, "disk_gb": 0.01}}))
    assert "<img" not in table and table.splitlines()[4].replace("\\|", "").count("|") == 5


# --- 12. terminal escapes in what people read ---------------------------------------------------------------------

def test_escape_sequences_in_a_file_name_reach_neither_status_nor_logs(tmp_path, settings):
    folder = tmp_path / "lectures"
    folder.mkdir()
    (folder / "corrupt\x1b[2J\x1b]0;pwned\x07.mp4").write_bytes(b"not a video at all" * 100)
    discover_subject(settings, "Escapes", f"courses:\n  - name: Biology\n    points:\n      - name: Cells\n"
                                          f"        videos_dir: {folder}\n")
    with session_scope(settings.db_url) as session:
        [video_id] = [v.id for v in session.query(Video)]
    env = {**os.environ, "LECTERN_HOME": str(tmp_path / "home"), "LECTERN_DB_URL": settings.db_url}
    stage = subprocess.run([sys.executable, "-m", "lectern", "stage", "download", "--video-id", video_id], env=env,
                           capture_output=True, text=True, timeout=300)
    status = subprocess.run([sys.executable, "-m", "lectern", "status", video_id], env=env, capture_output=True,
                            text=True, timeout=120)
    assert stage.returncode == 2 and "CorruptMedia" in stage.stderr + stage.stdout
    assert "CorruptMedia" in status.stdout and "corrupt[2J" not in status.stdout
    for text in (stage.stdout, stage.stderr, status.stdout, status.stderr):
        assert "\x1b" not in text and "\x07" not in text


# --- 13. rotation metadata ----------------------------------------------------------------------------------------

def test_a_video_tagged_rotate_90_is_probed_and_sampled_upright(tmp_path):
    import numpy as np

    from lectern.stages.download import media
    from lectern.stages.keyframes import decoding

    source, rotated = tmp_path / "source.mp4", tmp_path / "phone.mp4"
    # 640x360 stored; the top fifth white, so which way is up can be told
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "color=black:size=640x360:rate=5:duration=2",
                    "-f", "lavfi", "-i", "sine=duration=2", "-vf", "drawbox=x=0:y=0:w=640:h=72:color=white:t=fill",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(source)], check=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(source), "-c", "copy", "-metadata:s:v:0", "rotate=90",
                    str(rotated)], check=True)
    shown = tmp_path / "shown.png"  # FFmpeg's own player applies the display matrix
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(rotated), "-frames:v", "1", str(shown)], check=True)
    expected = np.asarray(Image.open(shown).convert("L"), dtype=float)
    info = media.probe(rotated)
    assert (info["width"], info["height"], info["rotation"]) == (360, 640, 90)
    [frame] = decoding.frames_at(str(rotated), [0.5], max_side=640).values()
    assert frame.shape[:2] == expected.shape == (640, 360)
    assert np.abs(frame.mean(axis=2) - expected).mean() < 10
    sample = next(iter(decoding.sample_frames(str(rotated), "interval", 1.0, 90)))
    assert sample.gray.shape[1] == 90 and sample.gray.shape[0] > 90  # upright: taller than wide
    assert np.abs(sample.rgb().mean(axis=2) - expected).mean() < 10


# --- 14. smaller faults -------------------------------------------------------------------------------------------

def test_a_manifest_in_a_folder_named_with_glob_characters_reads_its_own_files(tmp_path, video_file):
    folder = tmp_path / "br[1]"
    folder.mkdir()
    shutil.copy(video_file, folder / "talk.mp4")
    (folder / "m.csv").write_text("url,label\ntalk.mp4,Biology\n")
    manifest = load_manifest(folder / "m.csv")
    assert manifest.problems == [] and [r.video.id for r in manifest.rows] == ["talk"]
    assert inside(folder / "talk.mp4", str(folder))


def test_manifest_fields_are_capped_and_long_lines_are_not_read(tmp_path):
    path = tmp_path / "big.jsonl"
    with open(path, "w") as handle:
        handle.write(json.dumps({"url": "https://a.example.org/1.mp4", "label": "ok"}) + "\n")
        handle.write(json.dumps({"url": "https://a.example.org/2.mp4", "description": "d" * 20_000}) + "\n")
        handle.write(json.dumps({"url": "https://a.example.org/3.mp4",
                                 "description": "x" * (3 * 2**20)}) + "\n")
        handle.write(json.dumps({"url": "https://a.example.org/4.mp4", "label": "ok"}) + "\n")
    loaded = load_manifest(path)
    assert [r.video.id for r in loaded.rows] == ["1", "4"]
    assert [str(p) for p in loaded.problems] == [
        "line 2: malformed: description is 20,000 characters long (at most 10,000)",
        "line 3: malformed: the line is longer than 1024 KB (not read)"]


def test_page_urls_are_matched_against_the_extractors_of_their_host_only():
    from lectern.manifest import _extractors_for

    urls = ["https://www.youtube.com/watch?v=dQw4w9WgXcQ", "https://youtu.be/dQw4w9WgXcQ",
            "https://vimeo.com/76979871", "https://www.dailymotion.com/video/x7tgad0",
            "https://lectures.example.edu/course/42", "https://www.ted.com/talks/some_talk"]

    def full_scan(url):  # what url_video_id asked before: every site extractor
        extractor = next((e for e in _site_extractors() if e.suitable(url)), None)
        return extractor.get_temp_id(url) if extractor else None

    for url in urls:
        expected = full_scan(url)
        assert (url_video_id(url) == expected) if expected else True, url
    assert len(_extractors_for("https://lectures.example.edu")) < len(_site_extractors()) / 5


def test_reroot_rewrites_only_files_inside_its_folder(corpus, tmp_path, capsys):  # noqa: F811
    settings, store, _ = corpus
    build_release(settings, name="r1")
    folder = tmp_path / "export"
    export_release(store, "r1", folder, progress=lambda line: None)
    victim = tmp_path / "elsewhere" / "multimodal_textbook.json"
    victim.parent.mkdir()
    victim.write_text('[{"images": ["keep me"]}]')
    info = json.loads((folder / "export.json").read_text())
    (folder / "export.json").write_text(json.dumps({**info, "images_root": "/old", "files": [str(victim)]}))
    assert main(["reroot", str(folder)]) == 2
    assert "is not inside" in capsys.readouterr().err
    assert victim.read_text() == '[{"images": ["keep me"]}]'
    with pytest.raises(ValueError):
        reroot(folder)


def test_6to4_and_teredo_addresses_that_embed_a_private_one_are_refused():
    for url in ("http://[2002:7f00:1::]/v.mp4", "http://[2002:a9fe:a9fe::]/v.mp4", "http://[2001:0:7f00:1::]/v.mp4"):
        with pytest.raises(BlockedURL, match="6to4|Teredo"):
            check_url(url)
    check_url("http://[2002:808:808::]/v.mp4")  # 8.8.8.8 inside: not refused for that (nothing is fetched here)


# --- probed and held: kept held -----------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["http://2130706433/v.mp4", "http://0177.0.0.1/v.mp4", "http://0x7f000001/v.mp4",
                                 "http://0/v.mp4", "http://[::]/v.mp4", "http://localhost/v.mp4",
                                 "http://[::ffff:7f00:1]/v.mp4"])
def test_held_numeric_and_named_forms_of_loopback_are_refused(url):
    with pytest.raises(BlockedURL):
        check_url(url)


def test_held_an_og_video_page_pointing_at_a_refused_address_is_refused(tmp_path):
    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b'<html><head><meta property="og:video" content="http://127.0.0.2:9/secret.mp4">'
                             b'<title>t</title></head><body></body></html>')

        def log_message(self, *args):
            pass

    settings = Settings.from_env({"LECTERN_HOME": str(tmp_path), "LECTERN_DOWNLOAD_ALLOW_NETWORKS": "127.0.0.1/32"})
    with http_server(Page) as url, pytest.raises(BlockedURL, match="127.0.0.2"):
        download.fetch(f"{url}/page", tmp_path, settings)


@pytest.mark.parametrize("path", ["../outside.mp4", "/etc/passwd", "~/video.mp4", "/dev/zero"])
def test_held_manifest_paths_outside_its_folder_are_bad_rows(tmp_path, path):
    (tmp_path / "m.csv").write_text(f"url,label\n{path},Biology\n")
    loaded = load_manifest(tmp_path / "m.csv")
    assert loaded.rows == [] and "outside the manifest's folder" in str(loaded.problems[0])


def test_held_billion_laughs_and_python_tags_in_a_subject_yaml_are_clear_errors(tmp_path):
    from lectern.discovery import TaxonomyError, load_subject

    laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    laughs += [f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi")]
    (tmp_path / "laughs.yaml").write_text("\n".join(laughs) + "\nsubject: *i\ncourses: *i\n")
    with pytest.raises(TaxonomyError, match="subject"):
        load_subject(tmp_path / "laughs.yaml")
    (tmp_path / "python.yaml").write_text('subject: !!python/object/apply:os.system ["touch pwned"]\n')
    with pytest.raises(TaxonomyError, match="not valid YAML"):
        load_subject(tmp_path / "python.yaml")
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_held_script_in_titles_and_text_is_escaped_in_pages_and_the_viewer():
    from lectern.video_page import render_video_index, render_video_page
    from lectern.viewer import render_samples

    script = "<script>alert(1)</script>"
    page = render_video_page({"id": "v", "url": "javascript:alert(1)", "title": script, "duration_s": 1,
                              "language": "en", "subjects": [script], "points": [], "metadata_relevance": None,
                              "forgotten": None, "stages": [{"stage": "ocr", "status": "failed", "attempts": 1,
                                                             "why": script, "version": "1", "seconds": 1.0,
                                                             "log_url": None, "artifacts": {}}]})
    index = render_video_index([{"id": "v", "stage": "ocr", "status": "failed", "why": script}])
    viewer = render_samples("r", [{"images": [None], "texts": [script], "text_ocr_list": [script],
                                   "metadata": [{"vid": script}], "image_num": 0, "text_num": 1, "token_num": 1}])
    for html in (page, index, viewer):
        assert "<script>alert" not in html
    assert "href='javascript:" not in page


def test_held_forgetting_a_video_leaves_one_whose_id_it_begins(db_url, tmp_path, monkeypatch):
    from lectern.state.catalog import FoundVideo, PointSpec, record_search, sync_subject

    monkeypatch.setenv("LECTERN_HOME", str(tmp_path))
    monkeypatch.setenv("LECTERN_DB_URL", db_url)
    migrate(db_url)
    store = LocalStore(tmp_path / "store")
    with session_scope(db_url) as session:
        point = sync_subject(session, "Biology", [PointSpec("Cells", "Cells", "cells")])[0]
        record_search(session, point, [FoundVideo("a", "http://x/a"), FoundVideo("a-b", "http://x/a-b")], {})
    for video_id in ("a", "a-b"):
        store.put_bytes(artifact_key("download", "source", video_id), b"video " + video_id.encode())
    assert main(["forget", "a"]) == 0
    assert store.list("videos/") == [artifact_key("download", "source", "a-b")]
    with session_scope(db_url) as session:
        assert session.get(Video, "a-b").forgotten_at is None


def test_an_export_written_before_the_image_list_loses_a_taken_down_videos_images(corpus, tmp_path):  # noqa: F811
    settings, store, _ = corpus
    build_release(settings, name="r1")
    folder = tmp_path / "export"
    export_release(store, "r1", folder, progress=lambda line: None)
    (folder / "export-images.txt").unlink()  # as an export of an earlier version left it
    (folder / "dataset_images_interval_7" / "mine.jpg").write_bytes(b"a user's own file")
    assert main(["forget", "v2"]) == 0
    assert not (folder / "dataset_images_interval_7" / "v2").exists()
    assert (folder / "dataset_images_interval_7" / "v1" / "v1@0.0_1.0#1.jpg").exists()
    assert (folder / "dataset_images_interval_7" / "mine.jpg").read_bytes() == b"a user's own file"
