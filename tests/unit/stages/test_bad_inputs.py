"""Bad uploads in one download batch through the runner, as a pod runs them: each ends in a terminal state that
says why (rejected by which filter, or failed with which error class), the good one still succeeds, and nothing of
a bad one reaches the store."""

import random
import shutil
import subprocess

import pytest

from lectern.config import Settings
from lectern.demo.corpus import BROKEN
from lectern.demo.server import CorpusServer
from lectern.runner import EXIT_PERMANENT, run_stage_batch
from lectern.store import Keys, store_from_settings
from tests.unit.test_runner import discover, row


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
    with CorpusServer(directory) as server:
        yield server.base_url


EXPECTED = {  # video -> (status, reason or error class)
    "good": ("succeeded", None),
    "truncated": ("failed", "CorruptMedia"),
    "random_bytes": ("failed", "CorruptMedia"),
    "empty": ("failed", "CorruptMedia"),
    "audio_only": ("rejected", "no video stream"),
    "no_audio": ("rejected", "no audio stream (nothing to transcribe)"),
    "too_big": ("rejected", "size filter: larger than 1 MB"),
    "too_long": ("rejected", "probe filter: duration 40.0s > 30s"),
}


def test_each_bad_upload_ends_with_its_reason_and_the_good_one_proceeds(uploads, tmp_path, db_url):
    settings = Settings.from_env({"LECTERN_HOME": str(tmp_path), "LECTERN_DB_URL": db_url,
                                  "LECTERN_DOWNLOAD_ALLOW_NETWORKS": "127.0.0.0/8", "LECTERN_MAX_DOWNLOAD_MB": "1",
                                  "LECTERN_MAX_DURATION_S": "30"})
    ids = list(EXPECTED)
    discover(settings.db_url, *[(video_id, f"{uploads}/{video_id}.mp4") for video_id in ids])
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
            assert not store.exists(Keys.source(video_id)), video_id  # nothing half-done left as final
    assert store.exists(Keys.source("good")) and row(settings, "good", "transcribe").status == "pending"
