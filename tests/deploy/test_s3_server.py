"""The S3 server the compose file ships is the one the tests run: scripts/s3-server.sh (single-node Ceph RGW), in
its compose mode here: on disk (bluestore in a sparse file), keys from the environment, in the foreground as a
container's command, its objects still there after a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import boto3
import pytest

from lectern.local_airflow import free_port
from tests.conftest import ROOT

pytestmark = pytest.mark.integration
SCRIPT = ROOT / "scripts" / "s3-server.sh"


def client(port: int, access: str, secret: str):
    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id=access,
                        aws_secret_access_key=secret, region_name="us-east-1")


def test_the_compose_mode_keeps_objects_across_a_restart_and_stops_on_sigterm(tmp_path):
    port, data = free_port(), tmp_path / "s3"
    env = {**os.environ, "LECTERN_S3_OBJECTSTORE": "bluestore", "LECTERN_S3_SIZE_GB": "2",
           "LECTERN_S3_PORT": str(port), "LECTERN_S3_MON_PORT": str(free_port()),
           "LECTERN_S3_ACCESS_KEY": "compose-access", "LECTERN_S3_SECRET_KEY": "compose-secret"}
    started = subprocess.run([str(SCRIPT), "start", str(data)], env=env, capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stderr
    try:
        s3 = client(port, "compose-access", "compose-secret")
        s3.create_bucket(Bucket="lectern")
        s3.put_object(Bucket="lectern", Key="corpus/kept.txt", Body=b"kept")
    finally:
        subprocess.run([str(SCRIPT), "stop", str(data)], env=env, check=True, timeout=120)
    assert (data / "osd-block").stat().st_blocks * 512 < (data / "osd-block").stat().st_size  # sparse, on disk

    (data / "env").unlink()  # the first start's: `run` writes it again once it serves
    server = subprocess.Popen([str(SCRIPT), "run", str(data)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not (data / "env").exists():  # written again once RGW serves and its user is there
            assert server.poll() is None, server.stderr.read()
            assert time.monotonic() < deadline, "s3-server.sh run did not serve within 240 s"
            time.sleep(0.5)
        s3 = client(port, "compose-access", "compose-secret")
        assert s3.get_object(Bucket="lectern", Key="corpus/kept.txt")["Body"].read() == b"kept"
        with pytest.raises(Exception, match="InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied"):
            client(port, "lectern-test-access", "lectern-test-secret").list_objects_v2(Bucket="lectern")
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0, server.stderr.read()
        assert not [p for p in (data / "run").glob("*.pid")]  # every daemon stopped
    finally:
        if server.poll() is None:
            server.kill()
        subprocess.run([str(SCRIPT), "stop", str(data)], env=env, timeout=120)  # whatever happened above
