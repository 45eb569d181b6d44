"""Shared fixtures: the real Postgres (a fresh database per run), the real S3 server (Ceph RGW), the tiny local
models, the demo corpus and its loopback HTTP server, and an initialised Airflow home."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

# create_pg_database and drop_pg_database are imported from here by the tests (bench/ uses them too)
from lectern_dev.postgres import PG_ADMIN_URL, admin_connection, create_pg_database, drop_pg_database  # noqa: F401
from tests.published import SAMPLE_KEYS

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("LECTERN_TEST_CACHE", ROOT / ".lectern" / "test-cache"))  # reused across runs

# Airflow reads its configuration on first import: give it a private home and the repo's DAGs before that.
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="lectern-airflow-"))
os.environ.update({
    "AIRFLOW_HOME": str(AIRFLOW_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
})


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The real Postgres on 127.0.0.1:5432; a missing server is an error, never a skip."""
    try:
        admin_connection().close()
    except Exception as exc:  # pragma: no cover - environment problem
        pytest.fail(f"Postgres is not reachable at {PG_ADMIN_URL}: {exc} (.ci/run starts it)")
    return PG_ADMIN_URL


@pytest.fixture
def make_pg_db(pg_server):
    """Factory: a fresh, migrated Postgres database; all are dropped at the end of the test."""
    created = []

    def make(migrated: bool = True) -> str:
        name, url = create_pg_database(migrated)
        created.append(name)
        return url

    yield make
    for name in created:
        drop_pg_database(name)


@pytest.fixture
def pg_url(make_pg_db) -> str:
    return make_pg_db()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    from lectern.state.db import migrate

    url = f"sqlite:///{tmp_path / 'state.db'}"
    migrate(url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request) -> str:
    """Each state test runs on both the embedded default and the real Postgres."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture(scope="session")
def s3_server():
    """The real S3-compatible server: the one .ci/run started (LECTERN_TEST_S3_*), or one started here."""
    endpoint = os.environ.get("LECTERN_TEST_S3_ENDPOINT")
    started_dir = None
    if not endpoint:
        started_dir = Path(tempfile.mkdtemp(prefix="lectern-s3-"))
        proc = subprocess.run([str(ROOT / "scripts" / "s3-server.sh"), "start", str(started_dir)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.fail(f"could not start the S3 server (Ceph RGW): {proc.stderr[-2000:]}")
        values = dict(line.split("=", 1) for line in (started_dir / "env").read_text().split())
        os.environ.update(values)
        endpoint = values["LECTERN_TEST_S3_ENDPOINT"]
    os.environ["AWS_ACCESS_KEY_ID"] = os.environ["LECTERN_TEST_S3_ACCESS_KEY"]
    os.environ["AWS_SECRET_ACCESS_KEY"] = os.environ["LECTERN_TEST_S3_SECRET_KEY"]
    yield endpoint
    if started_dir:
        subprocess.run([str(ROOT / "scripts" / "s3-server.sh"), "stop", str(started_dir)], check=False)


@contextlib.contextmanager
def http_server(handler, host: str = "127.0.0.1"):
    """Serve `handler` (an http.server handler class) on `host`, any free port, in a thread; yields its URL."""
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def create_bucket(endpoint: str) -> str:
    import boto3
    from botocore.config import Config

    name = f"lectern-test-{uuid.uuid4().hex[:10]}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}))
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_bucket(s3_server) -> str:
    return create_bucket(s3_server)


@pytest.fixture(scope="session")
def tiny_models() -> dict[str, str]:
    from lectern_dev.tiny_models import build_all

    return build_all(CACHE / "models")


@pytest.fixture(scope="session")
def llm_endpoint(tmp_path_factory) -> str:
    """A real OpenAI-compatible server on loopback: llama.cpp's, serving SmolLM2-135M-Instruct (lectern_dev.llm_server).
    Its base URL; the model is openai:smollm2-135m-instruct."""
    from lectern_dev.llm_server import llm_server

    with llm_server(log=tmp_path_factory.mktemp("llm-server") / "server.log") as base_url:
        yield base_url


@pytest.fixture(scope="session")
def demo_corpus() -> tuple[Path, dict]:
    from lectern_dev.corpus import generate

    directory = CACHE / "corpus"
    return directory, generate(directory)


@pytest.fixture(scope="session")
def corpus_server(demo_corpus):
    from lectern_dev.server import CorpusServer

    with CorpusServer(demo_corpus[0]) as server:
        yield server


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata DB (SQLite in the private AIRFLOW_HOME), migrated once."""
    from lectern.local_airflow import run_airflow

    run_airflow(os.environ.copy(), "db", "migrate")
    return AIRFLOW_HOME


def model_environment(models: dict[str, str]) -> dict[str, str]:
    """LECTERN_* for the tiny models (the same settings the demo uses)."""
    from lectern_dev.demo import demo_settings

    return demo_settings(models)


def assert_published_sample(sample: dict, tokenizer: str, image_tokens: int = 576) -> None:
    """The published layout, with each clip's keyframes followed by its text, clips in time order (a sample may
    continue into the next video); `text_num` recomputed from the texts with the release's tokenizer."""
    from lectern.stages.assemble.run import count_tokens

    assert set(sample) == SAMPLE_KEYS
    n = len(sample["images"])
    assert len(sample["texts"]) == len(sample["text_ocr_list"]) == len(sample["metadata"]) == n
    pending, previous_end, video = [], 0.0, None
    for image, text, text_ocr, meta in zip(sample["images"], sample["texts"], sample["text_ocr_list"],
                                           sample["metadata"]):
        if meta["vid"] != video:
            previous_end, video = 0.0, meta["vid"]
        if image is not None:
            assert text is None and text_ocr is None
            pending.append(meta)
            continue
        assert isinstance(text, str) and text_ocr  # a text position carries ASR (or "") and OCR + ASR
        assert meta["start"] >= previous_end - 1e-6
        for frame in pending:  # the keyframes just before a text belong to its clip, in time order
            assert frame["clip"] == meta["clip"] and meta["start"] - 1e-6 <= frame["time"] <= meta["end"] + 1e-6
        assert [f["time"] for f in pending] == sorted(f["time"] for f in pending)
        pending, previous_end = [], meta["end"]
    assert sample["image_num"] == sum(1 for i in sample["images"] if i is not None) >= 1
    assert sample["text_num"] == sum(count_tokens(t, tokenizer) for t in sample["texts"] if t is not None)
    assert sample["token_num"] == sample["text_num"] + image_tokens * sample["image_num"]
