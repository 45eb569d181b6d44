"""The reliability suite (`make reliability`, and part of `make test`): each test injects one fault into real runs
on the real Postgres (and the real S3 server where the store matters) and records a row -- fault, runs, survived,
videos lost -- printed as a table at the end of the session and written to test-artifacts/reliability.md."""

from __future__ import annotations

import glob
import http.server
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from lectern.local_airflow import free_port
from tests.conftest import ROOT, http_server

ROWS: list[dict] = []


def run_environment(home, db_url: str, s3_endpoint: str | None = None, s3_bucket: str | None = None,
                    **extra: str) -> dict[str, str]:
    """LECTERN_* of a run in these tests: its home, the state DB, the S3 store when one is given, and downloads
    from the loopback test servers allowed."""
    store = {"LECTERN_STORE_URL": f"s3://{s3_bucket}/c", "LECTERN_S3_ENDPOINT_URL": s3_endpoint} if s3_bucket else {}
    return {"LECTERN_HOME": str(home), "LECTERN_DB_URL": db_url, **store,
            "LECTERN_DOWNLOAD_ALLOW_NETWORKS": "127.0.0.0/8", **extra}


@pytest.fixture
def record_fault():
    """record_fault(fault, runs, survived, lost): one row of the table (call it once the test's checks passed)."""

    def record(fault: str, runs: int, survived: int, lost: int) -> None:
        ROWS.append({"fault": fault, "runs": runs, "survived": survived, "lost": lost})

    return record


def table() -> str:
    lines = ["| fault | runs | survived | videos lost |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['fault']} | {r['runs']} | {r['survived']} | {r['lost']} |" for r in ROWS]
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    terminalreporter.write_sep("=", "reliability")
    terminalreporter.write_line(table())
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts" / "reliability.md").write_text(table() + "\n")


class _Slow(http.server.SimpleHTTPRequestHandler):
    """Serves files in small chunks with pauses: a download takes seconds, long enough to kill it mid-way."""

    def copyfile(self, source, outputfile):
        while chunk := source.read(16 * 1024):
            outputfile.write(chunk)
            outputfile.flush()
            time.sleep(0.25)

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_server(demo_corpus):
    import functools

    with http_server(functools.partial(_Slow, directory=str(demo_corpus[0]))) as url:
        yield url


class PostgresCluster:
    """A private Postgres server (initdb in a temporary directory, its own port), so a test can really stop and
    restart it -- crash included -- without touching the machine's server the rest of the suite uses."""

    def __init__(self):
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not binaries:
            pytest.fail("no PostgreSQL server binaries under /usr/lib/postgresql (apt: postgresql)")
        self.bin = Path(binaries[-1])
        self.dir = Path(tempfile.mkdtemp(prefix="lectern-pg-"))
        self.port = free_port()
        # initdb refuses root: run the server as the postgres system user then
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_owner:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.dir / "data"), "-U", "lectern", "-A", "trust")
        self.url = f"postgresql+psycopg2://lectern@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        proc = subprocess.run([*self.as_owner, str(self.bin / tool), *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{tool} failed: {proc.stderr[-2000:]}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-o", options, "-l", str(self.dir / "log"), "-w", "start")

    def crash(self) -> None:
        """Immediate shutdown: every backend killed, no checkpoint -- the next start replays the WAL."""
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")


@pytest.fixture
def postgres_cluster():
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    try:
        cluster.stop()
    except RuntimeError:
        pass  # already down
    shutil.rmtree(cluster.dir, ignore_errors=True)
