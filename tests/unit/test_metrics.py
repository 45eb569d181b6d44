"""`lectern metrics`: the state DB as Prometheus metrics, scraped over HTTP from the running exporter and read by
prometheus_client's own parser; their values are the state's counts; the Grafana dashboard's queries name only
metrics it serves."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from typing import Callable, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lectern.local_airflow import free_port
from lectern.state.db import session_scope
from lectern.state.models import Video, VideoStage
from tests.conftest import ROOT
from tests.unit.test_runner import discover

DASHBOARD = ROOT / "deploy" / "grafana" / "lectern-dashboard.json"


@contextlib.contextmanager
def running_exporter(env: dict[str, str]) -> Iterator[Callable[[], dict]]:
    """`lectern metrics` running with `env`, answering; yields a scrape: {(name, sorted labels): value}, read by
    prometheus_client's own parser."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "lectern", "metrics", "--port", str(port), "--address",
                               "127.0.0.1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def scrape() -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(text) for sample in family.samples}

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                scrape()
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "lectern metrics did not answer"
                time.sleep(0.3)
        yield scrape
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def scraped(db_url, tmp_path) -> dict:
    """Five videos in every state, then one scrape of a running `lectern metrics`: {(name, labels): value}."""
    discover(db_url, *((f"v{n}", f"http://x/v{n}") for n in range(1, 6)))
    with session_scope(db_url) as session:
        for video_id, status, reason, error, seconds in (
                ("v1", "succeeded", None, None, 12.0), ("v2", "succeeded", None, None, 8.0),
                ("v3", "rejected", "metadata filter: duration 5.0s < 10s", None, 1.0),
                ("v4", "rejected", "metadata filter: duration 3.5s < 10s", None, 1.0),
                ("v5", "failed", None, "CorruptMedia", 2.0)):
            row = session.get(VideoStage, (video_id, "download"))
            row.status, row.reason, row.error_class, row.seconds = status, reason, error, seconds
        for video_id, duration in (("v1", 1800.0), ("v2", 3600.0)):
            session.get(Video, video_id).duration_s = duration
        # the next stage's rows, as a download's success opens them: one running, one back in the queue after a try
        session.add_all([VideoStage(video_id="v1", stage="transcribe", status="running"),
                         VideoStage(video_id="v2", stage="transcribe", status="pending", seconds=30.0)])
    with running_exporter({**os.environ, "LECTERN_HOME": str(tmp_path), "LECTERN_DB_URL": db_url}) as scrape:
        return scrape()


def test_the_metrics_are_the_states_counts(scraped):
    def value(name, **labels):
        return scraped.get((name, tuple(sorted(labels.items()))))

    assert value("lectern_videos", stage="download", status="succeeded") == 2
    assert value("lectern_videos", stage="download", status="rejected") == 2
    assert value("lectern_videos", stage="transcribe", status="pending") == 1  # the queue (v2)
    assert value("lectern_videos", stage="transcribe", status="running") == 1
    # rejections counted by filter, whatever value each measured
    assert value("lectern_videos_rejected", stage="download", reason="metadata filter: duration Ns < Ns") == 2
    assert value("lectern_videos_failed", stage="download", error_class="CorruptMedia") == 1
    assert value("lectern_stage_seconds", stage="download") == 24.0
    assert value("lectern_gpu_seconds") == 30.0  # transcribe is a GPU stage
    assert value("lectern_video_hours", stage="download") == 1.5
    assert not [name for name, _ in scraped if name.startswith(("python_", "process_"))]  # the state's alone


def test_the_dashboard_asks_only_for_metrics_the_exporter_serves(scraped):
    dashboard = json.loads(DASHBOARD.read_text())
    served = {name for name, _ in scraped}
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(expressions) >= 8 and {panel["type"] for panel in dashboard["panels"]} >= {"timeseries", "table"}
    functions = {"sum", "by", "delta", "topk", "on", "group_left", "status", "stage", "reason", "error_class"}
    for expression in expressions:
        names = set(re.findall(r"\b(lectern_[a-z_]+|[a-z_]+)\b(?=\s*[{\[(]|\s*$|\s*[/*)])", expression)) - functions
        assert names and names <= served, (expression, names - served)
