"""Secrets stay out of logs, task results (XComs) and state rows; SQL is only ever built with bound parameters."""

import json
import os
import re
import subprocess
import sys

from lectern.config import Settings
from lectern.phase_tasks import outcome
from lectern.state.db import session_scope
from lectern.state.reports import stage_rows
from tests.conftest import ROOT
from tests.unit.test_runner import discover

DB_PASSWORD = "hunter2-db-secret"
AWS_SECRET = "aws-secret-0123456789abcdef"


def test_secrets_stay_out_of_logs_results_and_state_rows(pg_url, corpus_server, tmp_path):
    # Postgres here trusts loopback, so a password in the URL is accepted and ignored: it only has to stay hidden.
    url = pg_url.replace("postgresql+psycopg2://postgres@", f"postgresql+psycopg2://postgres:{DB_PASSWORD}@")
    env = {**os.environ, "LECTERN_HOME": str(tmp_path), "LECTERN_DB_URL": url,
           "LECTERN_DOWNLOAD_ALLOW_NETWORKS": "127.0.0.0/8", "AWS_ACCESS_KEY_ID": "lectern",
           "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
           # the store is an S3 endpoint where nothing listens: the failure's message is recorded and logged
           "LECTERN_STORE_URL": "s3://bucket/x", "LECTERN_S3_ENDPOINT_URL": "http://127.0.0.1:9"}
    discover(pg_url, ("photosynthesis", f"{corpus_server.base_url}/photosynthesis.mp4"),
             ("gone", f"{corpus_server.base_url}/gone.mp4"))
    output = ""
    for video_id in ("photosynthesis", "gone"):
        proc = subprocess.run([sys.executable, "-m", "lectern", "-v", "stage", "download", "--video-id", video_id],
                              env=env, capture_output=True, text=True, timeout=300)
        output += proc.stdout + proc.stderr
    output += subprocess.run([sys.executable, "-m", "lectern", "status", "--json", "photosynthesis", "gone"], env=env,
                             capture_output=True, text=True, timeout=120).stdout
    settings = Settings.from_env(env)
    with session_scope(url) as session:
        rows = json.dumps([[r.error_class, r.error_message, r.reason, r.metrics, r.artifacts, r.lease_owner]
                           for r in stage_rows(session)], default=str)
    results = json.dumps(outcome(settings, "download", ["photosynthesis", "gone"]))  # what publish puts in XCom
    assert "EndpointConnectionError" in output and "VideoUnavailable" in rows  # the failures were recorded...
    for text in (output, rows, results):
        assert DB_PASSWORD not in text and AWS_SECRET not in text  # ...without a secret in them


def test_sql_is_built_only_with_bound_parameters(tmp_path):
    # SQL is SQLAlchemy ORM/Core (bound parameters by construction); raw SQL built by formatting would show here
    formatted = re.compile(r"""\b(text|execute|exec_driver_sql)\(\s*f["']|"""
                           r"""["'][^"']*\b(SELECT|INSERT|UPDATE|DELETE)\b[^"']*["']\s*(%|\.format\()""", re.I)
    offenders = [f"{path.relative_to(ROOT)}:{n}" for path in (ROOT / "include").rglob("*.py")
                 for n, line in enumerate(path.read_text().splitlines(), start=1) if formatted.search(line)]
    assert offenders == []
    planted = tmp_path / "bad.py"  # the check itself finds what it is meant to find
    planted.write_text('session.execute(text(f"SELECT * FROM videos WHERE id = {video_id}"))\n'
                       'cursor.execute("DELETE FROM videos WHERE id = %s" % video_id)\n')
    assert sum(1 for line in planted.read_text().splitlines() if formatted.search(line)) == 2
