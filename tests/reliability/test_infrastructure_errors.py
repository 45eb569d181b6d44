"""Infrastructure failures that are not the video's fault -- an S3 server answering 503 SlowDown, S3 connections
closed before any answer, a full disk, a state DB connection that is gone -- each through a real server or a real
filesystem. Each is transient: the video is retried once the fault has passed, and none is lost."""

from __future__ import annotations

import os
import subprocess

import pytest

from lectern.config import Settings
from lectern.errors import classify
from lectern.runner import EXIT_OK, EXIT_TRANSIENT, run_stage
from lectern.store import DeleteFailed, S3Store, store_from_settings
from tests.reliability.conftest import run_environment
from tests.reliability.proxy import TcpProxy
from tests.reliability.test_outages import same_bytes
from tests.unit.test_runner import discover, row

pytestmark = pytest.mark.integration


@pytest.fixture
def s3_proxy(s3_server):
    yield from TcpProxy.serving(s3_server)


def _fast_s3(endpoint: str, bucket: str) -> S3Store:
    """A store whose client gives up after two tries, so a test sees the error boto3 raises in seconds."""
    import boto3
    from botocore.config import Config

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          config=Config(retries={"max_attempts": 2, "mode": "standard"},
                                        s3={"addressing_style": "path"}))
    return S3Store(bucket, "c", client=client)


def test_s3_server_errors_and_dropped_connections_are_transient(s3_proxy, s3_bucket, tmp_path):
    store = _fast_s3(f"http://127.0.0.1:{s3_proxy.port}", s3_bucket)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 << 20))  # above boto3's multipart threshold: upload_file's own error
    s3_proxy.answer_http(503, "Slow Down", "SlowDown")
    with pytest.raises(Exception) as put:
        store.put_bytes("probe.json", b"{}")
    assert classify(put.value) == ("ClientError", True), put.value
    assert put.value.response["Error"]["Code"] == "SlowDown"
    with pytest.raises(Exception) as upload:
        store.put_file("source.mp4", big)
    assert classify(upload.value) == ("S3UploadFailedError", True), upload.value
    s3_proxy.hang_up()
    with pytest.raises(Exception) as closed:
        store.put_bytes("probe.json", b"{}")
    assert classify(closed.value) == ("ConnectionClosedError", True), closed.value
    s3_proxy.answer_http(403, "Forbidden", "AccessDenied")  # a refusal, not an outage, stays permanent
    with pytest.raises(Exception) as refused:
        store.put_bytes("probe.json", b"{}")
    assert classify(refused.value) == ("AccessDenied", False)  # botocore names modelled codes
    s3_proxy.forward()
    store.put_file("source.mp4", big)
    assert store.get_bytes("source.mp4") == big.read_bytes()


def test_s3_answering_503_then_back(pg_url, s3_proxy, s3_bucket, corpus_server, demo_corpus, tmp_path,
                                    record_fault):
    settings = Settings.from_env(run_environment(tmp_path, pg_url, f"http://127.0.0.1:{s3_proxy.port}", s3_bucket,
                                                 LECTERN_RETRY_BACKOFF_SECONDS="1"))
    discover(pg_url, ("photosynthesis", f"{corpus_server.base_url}/photosynthesis.mp4"))
    s3_proxy.answer_http(503, "Slow Down", "SlowDown")
    assert run_stage("download", "photosynthesis", settings, owner="task-1", run_id="run-1") == EXIT_TRANSIENT
    failed = row(settings, "photosynthesis")
    assert (failed.status, failed.error_kind) == ("failed", "transient") and "SlowDown" in failed.error_message
    s3_proxy.forward()
    assert run_stage("download", "photosynthesis", settings, owner="task-1", run_id="run-1") == EXIT_OK
    done = row(settings, "photosynthesis")
    assert (done.status, done.attempts) == ("succeeded", 2)
    assert same_bytes(store_from_settings(settings), "photosynthesis", demo_corpus[0])
    record_fault("S3 server answering 503 SlowDown, then back", 1, 1, 0)


@pytest.fixture
def small_disk(tmp_path):
    """A 128 KiB tmpfs: the local store on a disk that fills up mid-write."""
    mount = tmp_path / "disk"
    mount.mkdir()
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    subprocess.run([*sudo, "mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run([*sudo, "umount", "-l", str(mount)], check=True)


def test_full_disk_is_transient_and_the_video_goes_through_once_space_is_freed(pg_url, small_disk, corpus_server,
                                                                             demo_corpus, tmp_path, record_fault):
    video_id = "photosynthesis"
    assert (demo_corpus[0] / f"{video_id}.mp4").stat().st_size > 128 << 10  # the video cannot fit
    settings = Settings.from_env(run_environment(tmp_path, pg_url, LECTERN_STORE_URL=f"file://{small_disk}/store",
                                                 LECTERN_RETRY_BACKOFF_SECONDS="1"))
    discover(pg_url, (video_id, f"{corpus_server.base_url}/{video_id}.mp4"))
    assert run_stage("download", video_id, settings, owner="task-1", run_id="run-1") == EXIT_TRANSIENT
    failed = row(settings, video_id)
    assert (failed.status, failed.error_kind, failed.error_class) == ("failed", "transient", "OSError")
    assert "No space left on device" in failed.error_message
    assert not [path for path in small_disk.rglob("*") if path.is_file()]  # the partial write was removed
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    subprocess.run([*sudo, "mount", "-o", "remount,size=16m", str(small_disk)], check=True)  # space freed
    assert run_stage("download", video_id, settings, owner="task-1", run_id="run-1") == EXIT_OK
    assert (row(settings, video_id).status, row(settings, video_id).attempts) == ("succeeded", 2)
    assert same_bytes(store_from_settings(settings), video_id, demo_corpus[0])
    record_fault("disk full while storing a download, then space freed", 1, 1, 0)


def test_a_closed_state_db_connection_is_transient(pg_url):
    from sqlalchemy import create_engine, text

    engine = create_engine(pg_url)
    with engine.connect() as connection:
        connection.connection.dbapi_connection.close()  # the server side is fine; this connection is gone
        with pytest.raises(Exception) as gone:
            connection.execute(text("select 1"))
    assert classify(gone.value) == ("InterfaceError", True), repr(gone.value)
    engine.dispose()


def test_keys_an_s3_delete_could_not_remove_are_an_error(s3_proxy, s3_bucket):
    """delete_objects with Quiet answers 200 and lists only the keys it kept, under Errors: they must not pass
    silently (a takedown that left the video's source behind would say it removed everything)."""
    store = _fast_s3(f"http://127.0.0.1:{s3_proxy.port}", s3_bucket)
    store.put_bytes("videos/v1/source.mp4", b"video")
    s3_proxy.answer_xml(200, "OK", '<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Error>'
                        "<Key>c/videos/v1/source.mp4</Key><Code>AccessDenied</Code><Message>Access Denied</Message>"
                        "</Error></DeleteResult>")
    with pytest.raises(DeleteFailed, match="c/videos/v1/source.mp4: AccessDenied Access Denied"):
        store.delete_keys(["videos/v1/source.mp4"])
    s3_proxy.forward()
    assert store.delete_prefix("videos/v1/") == 1 and store.list("videos/v1/") == []


def test_unfinished_multipart_uploads_are_aborted_with_their_video(s3_server, s3_bucket):
    store = _fast_s3(s3_server, s3_bucket)
    upload = store.client.create_multipart_upload(Bucket=s3_bucket, Key="c/videos/v1/source.mp4")
    store.client.upload_part(Bucket=s3_bucket, Key="c/videos/v1/source.mp4", UploadId=upload["UploadId"],
                             PartNumber=1, Body=os.urandom(5 << 20))  # a killed upload_file's first part

    def uploads() -> list:
        return store.client.list_multipart_uploads(Bucket=s3_bucket, Prefix="c/videos/").get("Uploads", [])

    assert len(uploads()) == 1
    assert store.remove_partial("videos/v1/", idle_s=3600) == 0  # a young upload may still be under way
    store.delete_prefix("videos/v1/")  # a takedown
    assert uploads() == []
