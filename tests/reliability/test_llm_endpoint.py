"""LLM judges and the rewrite behind an OpenAI-compatible endpoint: a real llama.cpp server serving SmolLM2-135M
(lectern_dev.llm_server), through the runner, behind a proxy that answers 503 or is down. A server that fails
for a while is transient: the video is retried and goes through once, nothing lost; a request the server refuses
is permanent, with the server's message. What a 135M model scores is not asserted: it cannot tell a lecture from
spam."""

from __future__ import annotations

import threading

import pytest

from lectern.config import Settings
from lectern.pipeline import artifact_key
from lectern.runner import EXIT_OK, EXIT_TRANSIENT, run_stage
from lectern.stages.judge import judging, llm
from lectern.state.db import session_scope
from lectern.state.transitions import claim_one, mark_succeeded
from lectern.store import store_from_settings
from lectern_dev.llm_server import MODEL_NAME
from tests.reliability.conftest import run_environment
from tests.reliability.proxy import TcpProxy
from tests.unit.test_runner import discover, row

pytestmark = pytest.mark.integration

MODEL = f"openai:{MODEL_NAME}"
SEGMENTS = [{"start": 0.0, "end": 6.0, "text": "Photosynthesis turns light energy into chemical energy in plants."},
            {"start": 6.0, "end": 12.0, "text": "The chlorophyll in the chloroplasts absorbs the red and blue light."}]
UNAVAILABLE = '{"error": {"message": "the model is loading", "type": "unavailable"}}'


@pytest.fixture
def llm_proxy(llm_endpoint):
    yield from TcpProxy.serving(llm_endpoint)


def endpoint_settings(tmp_path, pg_url: str, proxy: TcpProxy, retries: int = 1) -> Settings:
    return Settings.from_env(run_environment(
        tmp_path, pg_url, LECTERN_JUDGE_MODELS=MODEL, LECTERN_REWRITE_MODEL=MODEL, LECTERN_RETRY_BACKOFF_SECONDS="1",
        LECTERN_LLM_BASE_URL=f"http://127.0.0.1:{proxy.port}/v1", LECTERN_LLM_RETRIES=str(retries),
        LECTERN_LLM_TIMEOUT_S="60"))


def transcribed(settings: Settings, video_id: str = "photosynthesis") -> None:
    """A video whose download and transcription are done: its judge stage pending."""
    discover(settings.db_url, (video_id, f"http://127.0.0.1:9/{video_id}.mp4"))
    key = store_from_settings(settings).put_json(artifact_key("transcribe", "asr", video_id), {"segments": SEGMENTS})
    with session_scope(settings.db_url) as session:
        for stage, artifacts in (("download", {}), ("transcribe", {"asr": key})):
            claim_one(session, video_id, stage, "setup", 600, 3)
            mark_succeeded(session, video_id, stage, "setup", artifacts, {})


def assert_judged_once(settings: Settings, attempts: int) -> None:
    """The judge's verdict and the rewrite, written once, from the server's answers; tokens counted."""
    done = row(settings, "photosynthesis", "judge")
    assert (done.status, done.attempts) == ("succeeded", attempts), done.error_message
    store = store_from_settings(settings)
    verdict = store.get_json(done.artifacts["judge"])
    answers = verdict["llm_response"][llm.field_name(MODEL)]
    assert set(answers) == set(judging.CRITERIA) and all(isinstance(a, str) and a for a in answers.values())
    refined = store.get_json(done.artifacts["refined_asr"])
    assert [s["asr"] for s in refined["segments"]] == [s["text"] for s in SEGMENTS]
    assert all(s["refined"] for s in refined["segments"])  # the server answered each segment
    # three criteria and two segments: five requests, each with its tokens
    assert done.metrics["llm_requests"] == 5 and verdict["llm_usage"]["llm_requests"] == 5
    assert done.metrics["llm_prompt_tokens"] > 5 * 50 and done.metrics["llm_completion_tokens"] > 5
    asr = artifact_key("transcribe", "asr", "photosynthesis")
    assert store.list("videos/photosynthesis/") == sorted([asr, *done.artifacts.values()])  # nothing else or twice


def test_an_llm_endpoint_answering_503_then_back(pg_url, llm_proxy, tmp_path, record_fault):
    settings = endpoint_settings(tmp_path, pg_url, llm_proxy)
    transcribed(settings)
    llm_proxy.answer(503, "Service Unavailable", "application/json", UNAVAILABLE)
    assert run_stage("judge", "photosynthesis", settings, owner="task-1", run_id="run-1") == EXIT_TRANSIENT
    failed = row(settings, "photosynthesis", "judge")
    assert (failed.status, failed.error_kind, failed.error_class) == ("failed", "transient", "LLMUnavailable")
    assert "HTTP 503 after 2 tries: the model is loading" in failed.error_message
    assert store_from_settings(settings).list("videos/photosynthesis/") == [  # no half verdict
        artifact_key("transcribe", "asr", "photosynthesis")]
    llm_proxy.forward()
    assert run_stage("judge", "photosynthesis", settings, owner="task-1", run_id="run-1") == EXIT_OK
    assert_judged_once(settings, attempts=2)
    record_fault("LLM endpoint answering 503, then back", 1, 1, 0)


def test_an_llm_endpoint_that_recovers_within_the_retries(pg_url, llm_proxy, tmp_path, record_fault):
    """The client's own backoff (0.5, 1, 2 ... s) outlasts a short outage: the stage never fails."""
    settings = endpoint_settings(tmp_path, pg_url, llm_proxy, retries=5)
    transcribed(settings)
    llm_proxy.answer(503, "Service Unavailable", "application/json", UNAVAILABLE)
    back = threading.Timer(1.5, llm_proxy.forward)
    back.start()
    assert run_stage("judge", "photosynthesis", settings, owner="task-1", run_id="run-1") == EXIT_OK
    back.join()
    assert_judged_once(settings, attempts=1)
    record_fault("LLM endpoint answering 503 for 1.5 s (within the client's retries)", 1, 1, 0)


def test_an_llm_endpoint_that_is_down(pg_url, llm_proxy, tmp_path, record_fault):
    settings = endpoint_settings(tmp_path, pg_url, llm_proxy)
    transcribed(settings)
    llm_proxy.down()
    assert run_stage("judge", "photosynthesis", settings, owner="task-1", run_id="run-1") == EXIT_TRANSIENT
    failed = row(settings, "photosynthesis", "judge")
    assert (failed.status, failed.error_kind) == ("failed", "transient")
    assert "APIConnectionError after 2 tries" in failed.error_message
    llm_proxy.up()  # back on the same port
    assert run_stage("judge", "photosynthesis", settings, owner="task-1", run_id="run-1") == EXIT_OK
    assert_judged_once(settings, attempts=2)
    record_fault("LLM endpoint down (connection refused), then back", 1, 1, 0)


def test_a_request_the_server_refuses_is_permanent_with_its_message(llm_endpoint):
    serving = llm.Serving(base_url=llm_endpoint, retries=0)
    with pytest.raises(llm.LLMRequestRejected, match=r"refused the request: HTTP 400: .*context") as refused:
        llm.generate(MODEL, ["photosynthesis " * 9000], serving, max_new_tokens=8)  # past its 4096-token context
    assert not refused.value.transient


def test_answers_come_back_in_the_prompts_order_with_their_tokens(llm_endpoint):
    usage = llm.Usage()
    prompts = [f"Reply with the number {n} and nothing else." for n in range(6)]
    answers = llm.generate(MODEL, prompts, llm.Serving(base_url=llm_endpoint, concurrency=3), max_new_tokens=8,
                           usage=usage)
    assert len(answers) == 6 and all(isinstance(a, str) for a in answers)
    alone = llm.generate(MODEL, prompts[4:5], llm.Serving(base_url=llm_endpoint), max_new_tokens=8)
    assert alone == answers[4:5]  # greedy: the same prompt gets the same answer in its own place
    assert usage.requests == 6 and usage.prompt_tokens > 6 * 10 and 6 <= usage.completion_tokens <= 6 * 8
