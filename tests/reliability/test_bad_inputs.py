"""Bad uploads in one download batch through the runner, as a pod runs them, on the real Postgres and S3 server:
each ends in a terminal state that says why (rejected by which filter, or failed with which error class), the good
one still succeeds, and nothing of a bad one reaches the store."""

import http.server
import random
import shutil
import subprocess
import time

import pytest

from lectern.config import Settings
from lectern.pipeline import artifact_key
from lectern.runner import EXIT_NOT_CLAIMABLE, EXIT_PERMANENT, EXIT_TRANSIENT, run_stage_batch
from lectern.store import Keys, store_from_settings
from lectern_dev.corpus import BROKEN
from lectern_dev.server import CorpusServer
from tests.conftest import http_server
from tests.reliability.conftest import run_environment
from tests.unit.stages.test_download_errors import _Status
from tests.unit.stages.test_download_guard import _Redirect
from tests.unit.test_runner import discover, row

pytestmark = pytest.mark.integration


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def uploads(tmp_path_factory, demo_corpus):
    directory = tmp_path_factory.mktemp("bad-uploads")
    white = ["-f", "lavfi", "-i", "color=c=white:s=320x240:r=10"]
    tone = ["-f", "lavfi", "-i", "sine=frequency=440"]
    h264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p"]
    ffmpeg(*white, *tone, "-t", "12", *h264, "-c:a", "aac", str(directory / "good.mp4"))
    ffmpeg(*white, *tone, "-t", "40", *h264, "-c:a", "aac", str(directory / "too_long.mp4"))
    ffmpeg(*tone, "-t", "12", "-c:a", "aac", str(directory / "audio_only.mp4"))
    ffmpeg(*white, "-t", "12", *h264, str(directory / "no_audio.mp4"))
    shutil.copy(demo_corpus[0] / f"{BROKEN}.mp4", directory / "truncated.mp4")
    noise = random.Random(7)
    (directory / "random_bytes.mp4").write_bytes(bytes(noise.getrandbits(8) for _ in range(200_000)))
    (directory / "too_big.mp4").write_bytes((directory / "good.mp4").read_bytes() * 40)  # > 1 MB
    (directory / "empty.mp4").write_bytes(b"")
    # a served URL that redirects to the cloud metadata service (link-local): the guard refuses the connection
    metadata = type("ToMetadata", (_Redirect,), {"target": "http://169.254.169.254/latest/meta-data/iam"})
    with CorpusServer(directory) as server, http_server(metadata) as redirector:
        yield server.base_url, redirector


EXPECTED = {  # video -> (status, reason or error class)
    "good": ("succeeded", None),
    "truncated": ("failed", "CorruptMedia"),
    "random_bytes": ("failed", "CorruptMedia"),
    "empty": ("failed", "CorruptMedia"),
    "audio_only": ("rejected", "no video stream"),
    "no_audio": ("rejected", "no audio stream (nothing to transcribe)"),
    "too_big": ("rejected", "size filter: larger than 1 MB"),
    "too_long": ("rejected", "probe filter: duration 40.0s > 30s"),
    "redirect_to_private": ("failed", "BlockedURL"),
}


def test_each_bad_upload_ends_with_its_reason_and_the_good_one_proceeds(uploads, tmp_path, pg_url, s3_server,
                                                                       s3_bucket, record_fault):
    settings = Settings.from_env(run_environment(tmp_path, pg_url, s3_server, s3_bucket, LECTERN_MAX_DOWNLOAD_MB="1",
                                                 LECTERN_MAX_DURATION_S="30"))
    files, redirector = uploads
    ids = list(EXPECTED)
    discover(pg_url, *[(video_id, f"{redirector}/video.mp4" if video_id == "redirect_to_private"
                        else f"{files}/{video_id}.mp4") for video_id in ids])
    assert run_stage_batch("download", ids, settings, owner="pod-1") == EXIT_PERMANENT
    store = store_from_settings(settings)
    for video_id, (status, why) in EXPECTED.items():
        final = row(settings, video_id)
        assert final.status == status, (video_id, final.status, final.reason, final.error_message)
        if status == "rejected":
            assert final.reason == why, video_id
        elif status == "failed":
            assert (final.error_class, final.error_kind) == (why, "permanent") and final.error_message, video_id
        if status != "succeeded":
            # nothing half-done left as final
            assert not store.exists(artifact_key("download", "source", video_id)), video_id
    assert store.exists(artifact_key("download", "source", "good"))
    assert row(settings, "good", "transcribe").status == "pending"
    assert "169.254.169.254" in row(settings, "redirect_to_private").error_message
    record_fault(f"{len(EXPECTED) - 1} kinds of bad input in one batch with a good video", len(EXPECTED),
                 len(EXPECTED), 0)


ANSWERS = {"gone_404": 404, "gone_410": 410, "busy_429": 429, "down_503": 503, "dropped": 0}


def test_download_errors_are_tombstoned_or_retried_with_backoff_up_to_the_cap(uploads, tmp_path, pg_url, s3_server,
                                                                               s3_bucket, record_fault):
    settings = Settings.from_env(run_environment(tmp_path, pg_url, s3_server, s3_bucket, LECTERN_MAX_ATTEMPTS="2",
                                                 LECTERN_RETRY_BACKOFF_SECONDS="1"))
    files, _ = uploads
    with http_server(_Status) as answering:
        discover(pg_url, ("good", f"{files}/good.mp4"),
                 *[(video_id, f"{answering}/{status}.mp4") for video_id, status in ANSWERS.items()])
        ids = ["good", *ANSWERS]
        assert run_stage_batch("download", ids, settings, owner="pod-1", run_id="run-1") == EXIT_TRANSIENT
        for video_id in ("gone_404", "gone_410"):  # gone for good: a tombstone, never tried again
            final = row(settings, video_id)
            assert (final.status, final.error_kind, final.error_class, final.retry_at) == \
                ("failed", "permanent", "VideoUnavailable", None), video_id
        for video_id in ("busy_429", "down_503", "dropped"):
            waiting = row(settings, video_id)
            assert (waiting.status, waiting.error_kind, waiting.error_class) == \
                ("failed", "transient", "DownloadFailed"), video_id
            assert waiting.retry_at is not None and waiting.error_message, video_id
        # the backoff (1 s, +-20 %) holds them back from the next run; once it passes, the last attempt is final
        assert run_stage_batch("download", [*ANSWERS], settings, owner="pod-2",
                               run_id="run-2") == EXIT_NOT_CLAIMABLE
        time.sleep(1.5)
        assert run_stage_batch("download", ids, settings, owner="pod-3", run_id="run-3") == EXIT_PERMANENT
    for video_id in ("busy_429", "down_503", "dropped"):
        final = row(settings, video_id)
        assert (final.status, final.attempts, final.error_kind) == ("failed", 2, "permanent"), video_id
    assert row(settings, "good").status == "succeeded" and row(settings, "good").attempts == 1
    assert store_from_settings(settings).list(Keys.video("gone_404", "")) == []
    record_fault("download errors: 404/410 tombstoned, 429/503/dropped retried with backoff up to the cap",
                 len(ids), len(ids), 0)


class _RateLimited(http.server.SimpleHTTPRequestHandler):
    """A host that rate-limits: its first requests get 429 Too Many Requests (with Retry-After), then it serves."""

    refusals_left = 0

    def do_GET(self):  # noqa: N802 - http.server's name
        cls = type(self)
        if cls.refusals_left > 0:
            cls.refusals_left -= 1
            self.send_response(429, "Too Many Requests")
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


def test_rate_limited_downloads_wait_and_are_never_tombstoned(tmp_path, pg_url, record_fault):
    """Three videos from a host that answers 429 to its next 6 requests (each video's first two tries): each is
    retried with backoff, never tombstoned, and stored once the limit lifts."""
    import functools

    directory = tmp_path / "site"
    directory.mkdir()
    ids = ["lecture_1", "lecture_2", "lecture_3"]
    ffmpeg("-f", "lavfi", "-i", "color=c=white:s=320x240:r=10", "-f", "lavfi", "-i", "sine=frequency=440", "-t", "12",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(directory / f"{ids[0]}.mp4"))
    for video_id in ids[1:]:
        shutil.copy(directory / f"{ids[0]}.mp4", directory / f"{video_id}.mp4")
    limited = type("Limited", (_RateLimited,), {"refusals_left": 6})
    settings = Settings.from_env(run_environment(tmp_path, pg_url, LECTERN_STORE_URL=f"file://{tmp_path}/store",
                                                 LECTERN_RETRY_BACKOFF_SECONDS="1", LECTERN_MAX_ATTEMPTS="6"))
    with http_server(functools.partial(limited, directory=str(directory))) as site:
        discover(pg_url, *[(video_id, f"{site}/{video_id}.mp4") for video_id in ids])
        for run, backoff in enumerate((1, 2, 4), start=1):
            run_stage_batch("download", ids, settings, owner=f"pod-{run}", run_id=f"run-{run}")
            if all(row(settings, video_id).status == "succeeded" for video_id in ids):
                break
            for video_id in ids:
                assert row(settings, video_id).error_kind == "transient", video_id  # never tombstoned
            time.sleep(backoff * 1.25)  # the backoff after this attempt (+-20 %)
    assert limited.refusals_left == 0  # the limit really hit them
    store = store_from_settings(settings)
    for video_id in ids:
        final = row(settings, video_id)
        assert (final.status, final.error_class, final.attempts) == ("succeeded", None, 3), video_id
        assert store.list(Keys.video(video_id, "")) == sorted(
            [artifact_key("download", "probe", video_id), artifact_key("download", "source", video_id)])
    record_fault("rate limited: a host answering 429 for a while, then serving", len(ids), len(ids), 0)
