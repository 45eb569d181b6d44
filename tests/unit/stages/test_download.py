import pytest

from lectern.errors import CorruptMedia, VideoUnavailable
from lectern.pipeline import artifact_key
from lectern.stages.download import run as download
from lectern_dev.corpus import BROKEN
from tests.unit.stages.conftest import record


def test_downloads_and_probes_over_http(corpus_server, store, settings):
    result = download.run(record("photosynthesis", f"{corpus_server.base_url}/photosynthesis.mp4"), store, settings)
    assert result.status == "succeeded"
    assert result.metrics["video_codec"] == "h264" and result.metrics["has_audio"]
    assert result.metrics["duration_s"] == pytest.approx(24, abs=0.5)
    assert result.video_updates["duration_s"] == result.metrics["duration_s"]
    assert store.exists(artifact_key("download", "source", "photosynthesis"))
    assert store.get_json(artifact_key("download", "probe", "photosynthesis"))["height"] == 720


def test_a_truncated_upload_is_corrupt_media(corpus_server, store, settings):
    with pytest.raises(CorruptMedia, match="ffprobe could not read source.mp4: (End of file|Invalid data)"):
        download.run(record(BROKEN, f"{corpus_server.base_url}/{BROKEN}.mp4"), store, settings)
    assert store.list("videos/") == []  # nothing half-written


def test_missing_video_is_permanent(corpus_server, store, settings):
    with pytest.raises(VideoUnavailable, match="404"):
        download.run(record("gone", f"{corpus_server.base_url}/gone.mp4"), store, settings)


def test_metadata_filter_rejects_before_downloading(store, settings):
    result = download.run(record("long", "http://127.0.0.1:9/never.mp4", duration_s=7200.0), store, settings)
    assert result.status == "rejected" and result.reason == "metadata filter: duration 7200.0s > 3600s"
    short = download.run(record("short", "http://127.0.0.1:9/never.mp4", duration_s=4.0), store, settings)
    assert short.reason == "metadata filter: duration 4.0s < 10s"


def test_live_stream_is_rejected_before_downloading(store, settings):
    live = record("live", "http://127.0.0.1:9/never.mp4", duration_s=None)
    from dataclasses import replace

    result = download.run(replace(live, live_status="is_live"), store, settings)
    assert result.status == "rejected" and result.reason == "metadata filter: live stream (is_live)"
    assert store.list("videos/") == []


@pytest.mark.parametrize("container", ["mpegts", "matroska"])
def test_a_container_without_a_duration_is_measured_not_taken_as_zero(tmp_path, container):
    """FFmpeg gives no duration for a stream too short to estimate (one frame here; streams cut from a live
    source too): it is measured from the packets, never 0.0 s, which the probe filter would reject as too short
    though nothing said it was."""
    import json
    import subprocess

    from lectern.stages.download import media

    path = tmp_path / f"one.{container}"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-frames:v", "1",
                    "-f", container, "pipe:1"], stdout=path.open("wb"), check=True)
    ffprobe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json",
                                         str(path)], capture_output=True, text=True, check=True).stdout)
    assert "duration" not in ffprobe["format"]  # the case itself: FFmpeg does not know
    assert media.probe(path)["duration_s"] == pytest.approx(0.1)


@pytest.fixture
def cover_files(demo_corpus):
    from PIL import Image

    Image.new("RGB", (64, 48), (10, 120, 200)).save(demo_corpus[0] / "cover_ok.png")
    (demo_corpus[0] / "cover_text.jpg").write_text("<html>not an image</html>")
    return demo_corpus[0]


def test_a_cover_is_fetched_checked_and_stored_beside_the_video(corpus_server, store, settings, cover_files):
    from dataclasses import replace

    video = replace(record("photosynthesis", f"{corpus_server.base_url}/photosynthesis.mp4"),
                    cover_url=f"{corpus_server.base_url}/cover_ok.png")
    result = download.run(video, store, settings)
    assert result.status == "succeeded" and result.artifacts["cover"] == "videos/photosynthesis/cover.png"
    from PIL import Image

    with Image.open(store.root / result.artifacts["cover"]) as cover:
        assert cover.size == (64, 48)


@pytest.mark.parametrize("cover, extra, why", [
    ("cover_text.jpg", {}, "not an image"),
    ("missing.jpg", {}, "HTTP 404"),
    ("cover_ok.png", {"max_cover_mb": 0.00001}, "larger than 1e-05 MB"),
    ("cover_ok.png", {"download_allow_networks": ()}, "is a loopback address"),
])
def test_a_cover_that_cannot_be_had_is_recorded_and_the_video_kept(corpus_server, store, settings, cover_files,
                                                                    cover, extra, why):
    from dataclasses import replace

    from lectern.stages.download.run import NoCover, fetch_cover

    settings = replace(settings, **extra)
    url = f"{corpus_server.base_url}/{cover}"
    with pytest.raises(NoCover, match=why):
        fetch_cover(url, settings)
    if "download_allow_networks" in extra:
        return  # the video itself is on loopback too
    result = download.run(replace(record("photosynthesis", f"{corpus_server.base_url}/photosynthesis.mp4"),
                                  cover_url=url), store, settings)
    assert result.status == "succeeded" and "cover" not in result.artifacts and why in result.metrics["cover_error"]


def test_the_resolution_filter_applies_to_the_probed_height_after_download(corpus_server, store, settings):
    from dataclasses import replace

    result = download.run(record("photosynthesis", f"{corpus_server.base_url}/photosynthesis.mp4"), store,
                          replace(settings, min_height=1080))
    assert result.status == "rejected" and result.reason == "probe filter: height 720p < 1080p"
    assert not store.exists(artifact_key("download", "source", "photosynthesis"))
