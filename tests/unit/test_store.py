"""Both store backends behind one interface: the local directory and the real S3 server (Ceph RGW)."""

import pytest

from lectern.pipeline import artifact_key
from lectern.store import Keys, LocalStore, S3Store, check_video_id, open_store


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    endpoint = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    return S3Store(bucket, "lectern", endpoint_url=endpoint)


def test_roundtrip_list_and_delete(store, tmp_path):
    store.put_json(artifact_key("transcribe", "asr", "vid1"), {"segments": [1, 2]})
    source = tmp_path / "source.bin"
    source.write_bytes(b"\x00" * 3_000_000)
    store.put_file(artifact_key("download", "source", "vid1"), source)
    store.put_bytes(Keys.keyframe("vid1", 0, 12.34, 1), b"jpeg")
    assert store.get_json(artifact_key("transcribe", "asr", "vid1")) == {"segments": [1, 2]}
    assert store.exists(artifact_key("download", "source", "vid1"))
    assert not store.exists(artifact_key("ocr", "ocr", "vid1"))
    assert store.list("videos/vid1/") == sorted([
        "videos/vid1/asr.json", "videos/vid1/source.mp4", "videos/vid1/keyframes/vid1@0.0_12.3#1.jpg"])
    with store.local_path(artifact_key("download", "source", "vid1")) as path:
        assert path.stat().st_size == 3_000_000
    assert store.delete_prefix("videos/vid1/") == 3
    assert store.list("videos/") == []
    with pytest.raises(FileNotFoundError):
        store.get_bytes(artifact_key("transcribe", "asr", "vid1"))


def test_rewrite_overwrites_instead_of_duplicating(store):
    key = artifact_key("assemble", "samples", "vid2")
    store.put_bytes(key, b"first")
    store.put_bytes(key, b"second")
    assert store.get_bytes(key) == b"second"
    assert store.list("videos/vid2/") == [key]


def test_local_write_is_atomic(tmp_path):
    store = LocalStore(tmp_path)

    def failing_write(handle):
        handle.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError):
        store._atomic(artifact_key("transcribe", "asr", "vid3"), failing_write)
    assert store.list("") == []  # no partial file visible, no temp left behind
    assert list(tmp_path.rglob("*.tmp")) == []


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", "x" * 65, "id with space", "..", "a\x00b", "id\n"])
def test_video_ids_are_sanitised(bad):
    with pytest.raises(ValueError):
        check_video_id(bad)
    with pytest.raises(ValueError):
        artifact_key("download", "source", bad)


@pytest.mark.parametrize("key", ["../outside.txt", "videos/../../outside.txt", "/etc/passwd", "", ".", "a\x00b"])
def test_local_store_refuses_keys_outside_its_root(tmp_path, key):
    store = LocalStore(tmp_path / "store")
    with pytest.raises(ValueError, match="escapes the store"):
        store.put_bytes(key, b"x")
    assert not (tmp_path / "outside.txt").exists()
    assert store.put_bytes("videos/../inside.txt", b"x") == "videos/../inside.txt"  # stays in: allowed
    assert (tmp_path / "store" / "inside.txt").read_bytes() == b"x"


def test_open_store_by_url(tmp_path):
    assert isinstance(open_store(f"file://{tmp_path}"), LocalStore)
    with pytest.raises(ValueError):
        open_store("ftp://host/x")


def test_copy_out_writes_the_object_whole_outside_the_store(store, tmp_path):
    """An export's image: written beside its place and renamed over it (nothing half-written is left), on both
    backends; a second copy replaces the first."""
    key = Keys.keyframe("vid1", 0, 1, 1)
    store.put_bytes(key, b"jpeg-one")
    target = tmp_path / "out" / "vid1" / "a.jpg"
    store.copy_out(key, target)
    store.put_bytes(key, b"jpeg-two")
    store.copy_out(key, target)
    assert target.read_bytes() == b"jpeg-two"
    assert [p.name for p in target.parent.iterdir()] == ["a.jpg"]
    with pytest.raises(FileNotFoundError):
        store.copy_out(Keys.keyframe("vid1", 0, 1, 9), tmp_path / "out" / "missing.jpg")
    assert not (tmp_path / "out" / "missing.jpg").exists() and [p.name for p in target.parent.iterdir()] == ["a.jpg"]


def test_the_store_takes_its_keys_from_an_airflow_connection(s3_server, s3_bucket, monkeypatch):
    """LECTERN_S3_CONN_ID: inside Airflow, the store's keys and endpoint come from an aws connection (here from
    its AIRFLOW_CONN_ variable, as compose and the chart give it), not from AWS_* (wrong here) or
    LECTERN_S3_ENDPOINT_URL (unset)."""
    import json
    import os

    from botocore.exceptions import ClientError

    import lectern_airflow.connections  # noqa: F401  (what every Airflow process of Lectern's loads)
    from lectern.config import Settings
    from lectern.store import store_from_settings

    monkeypatch.setenv("AIRFLOW_CONN_LECTERN_TEST_S3", json.dumps({
        "conn_type": "aws", "login": os.environ["LECTERN_TEST_S3_ACCESS_KEY"],
        "password": os.environ["LECTERN_TEST_S3_SECRET_KEY"], "extra": {"endpoint_url": s3_server}}))
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "not-the-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it keeps the keys it first read
    url = f"s3://{s3_bucket}/by-connection"
    store = store_from_settings(Settings.from_env({"LECTERN_STORE_URL": url, "LECTERN_S3_CONN_ID": "lectern_test_s3"}))
    key = store.put_json(artifact_key("ocr", "ocr", "vid1"), {"frames": 3})
    assert store.get_json(key) == {"frames": 3}
    without = store_from_settings(Settings.from_env({"LECTERN_STORE_URL": url, "LECTERN_S3_ENDPOINT_URL": s3_server}))
    with pytest.raises(ClientError, match="InvalidAccessKeyId"):
        without.get_json(key)  # the AWS_* variables, wrong: the connection was what worked
