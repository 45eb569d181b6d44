"""The reliability suite (`make reliability`, and part of `make test`): each test injects one fault into real runs
on the real Postgres (and the real S3 server where the store matters) and records a row -- fault, runs, survived,
videos lost -- printed as a table at the end of the session and written to test-artifacts/reliability.md."""

from __future__ import annotations

import http.server
import time

import pytest

from tests.conftest import ROOT, http_server

ROWS: list[dict] = []


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
