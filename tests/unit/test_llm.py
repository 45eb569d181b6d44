"""The ###Score: N### format and real batched generation with the tiny local chat models."""

import pytest

from lectern.errors import PermanentError
from lectern.stages.judge import llm
from lectern_dev.tiny_models import SCRIPTED_ANSWER


@pytest.mark.parametrize("answer,score", [
    ("Clear and on topic.\n###Score: 8###", 8.0),
    ("###Score:10###", 10.0),
    ("###score: 0###", 0.0),
    ("Good. ### Score : 7.5 ###", 7.5),
    ("###Score: 6/10###", 6.0),
    ("It repeats itself. ###Score: 3###\nFinal: ###Score: 3###", 3.0),  # the same score twice is one score
])
def test_parse_well_formed(answer, score):
    assert llm.parse_score(answer) == score


@pytest.mark.parametrize("answer", [
    None, "", "I would give it an 8.", "Score: 8", "###Score: ###", "###Score: eight###",
    "###Score: 11###", "###Score: -1###",  # out of range
    "###Score: 2### on second thought ###Score: 9###",  # conflicting
    "#Score: 7#", "\x00\x01 ###Sc0re: 7###",
])
def test_parse_malformed_is_none(answer):
    assert llm.parse_score(answer) is None


def test_field_names_are_unique_and_readable():
    names = llm.field_names(["Qwen/Qwen2.5-7B-Instruct", "/models/a/llm", "/models/b/llm"])
    assert names == {"Qwen/Qwen2.5-7B-Instruct": "qwen2_5_7b_instruct", "/models/a/llm": "llm",
                     "/models/b/llm": "llm_2"}
    assert llm.field_name("openai:deepseek-chat@https://api.deepseek.com/v1") == "deepseek_chat"
    assert llm.field_name("openai:meta-llama/Meta-Llama-3-8B-Instruct") == "meta_llama_3_8b_instruct"


def test_endpoint_references_and_where_the_key_goes():
    serving = llm.Serving(base_url="http://vllm:8000/v1", api_key="secret")
    assert llm.endpoint("Qwen/Qwen2.5-7B-Instruct", serving) is None  # in this process
    assert llm.endpoint("openai:judge", serving) == llm.Endpoint("judge", "http://vllm:8000/v1", "secret")
    assert llm.endpoint("openai:judge@http://vllm:8000/v1/", serving).api_key == "secret"  # the same server
    other = llm.endpoint("openai:judge@https://elsewhere.example/v1", serving)
    assert other == llm.Endpoint("judge", "https://elsewhere.example/v1", None)  # the key is never sent elsewhere
    assert "secret" not in repr(llm.endpoint("openai:judge", serving))
    with pytest.raises(PermanentError, match="set LECTERN_LLM_BASE_URL"):
        llm.endpoint("openai:judge", llm.Serving())
    with pytest.raises(PermanentError, match="no model name"):
        llm.endpoint("openai:", serving)


def test_generate_batches_keep_prompt_order(tiny_models):
    prompts = ["short", "a much longer prompt about photosynthesis " * 40, "medium length prompt " * 5]
    usage = llm.Usage()
    answers = llm.generate(tiny_models["llm_scripted"], prompts, llm.Serving("cpu", batch_size=2), max_new_tokens=24,
                           system="You judge transcripts.", usage=usage)
    assert answers == [SCRIPTED_ANSWER] * 3  # left padding: every prompt continues from its own last token
    assert llm.parse_score(answers[0]) == 7.0
    assert usage.requests == 3 and usage.prompt_tokens > 3 * 40 and 3 * 5 <= usage.completion_tokens <= 3 * 24


def test_generate_random_model_is_unparseable_not_fatal(tiny_models):
    answers = llm.generate(tiny_models["llm_random"], ["Rate this. ###Score: N###"] * 2, llm.Serving("cpu", 2),
                           max_new_tokens=12)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    assert [llm.parse_score(a) for a in answers] == [None, None]
    assert llm.generate(tiny_models["llm_random"], [], llm.Serving("cpu")) == []
