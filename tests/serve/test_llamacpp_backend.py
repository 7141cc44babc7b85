"""`reprolab serve --lm-backend llama.cpp`, through the official `openai` client: the same
routes, streaming, usage, stop, seed and n as the transformers backend, plus log
probabilities, JSON by grammar and the penalties; seeded answers that do not change under
concurrent load; the parameters it lacks refused by name on the other backend."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.serve.conftest import start_server

CHAT = {"model": "llm-sft", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture(scope="module")
def server(served_store, params_file_module, llama_cpp_built):
    args = ("--task", "llm-sft", "--lm-backend", "llama.cpp", "--no-ui", "--lm-slots", "4")
    with start_server(served_store, params_file_module, *args) as running:
        yield running


@pytest.fixture(scope="module")
def llama_cpp_built():
    from reprolab.llamacpp import install

    if not install.available():
        pytest.fail(f"no llama.cpp build at {install.home()}: run `make setup`")


@pytest.fixture(scope="module")
def client(server):
    import openai

    return openai.OpenAI(base_url=server.url + "/v1", api_key=server.token, max_retries=0)


def test_completions_stream_as_whole_answers_do(client):
    ask = {"model": "minit", "prompt": "the ", "max_tokens": 6, "temperature": 0}
    whole = client.completions.create(**ask)
    assert whole.usage.prompt_tokens == 4 and 1 <= whole.usage.completion_tokens <= 6
    chunks = list(
        client.completions.create(**ask, stream=True, stream_options={"include_usage": True})
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_stop_seed_and_n(client):
    ask = {"model": "minit", "prompt": "the ", "max_tokens": 8}
    text = client.completions.create(**ask, temperature=0).choices[0].text
    if len(text) >= 3:
        cut = client.completions.create(**ask, temperature=0, stop=[text[2:4]])
        assert cut.choices[0].text == text[: text.find(text[2:4])]
    many = client.completions.create(**ask, temperature=1.0, seed=7, n=3)
    alone = [client.completions.create(**ask, temperature=1.0, seed=7 + i) for i in range(3)]
    assert [c.text for c in many.choices] == [a.choices[0].text for a in alone]


def test_log_probabilities_on_both_routes(client):
    chat = client.chat.completions.create(
        **CHAT, max_tokens=5, temperature=0, logprobs=True, top_logprobs=3
    )
    content = chat.choices[0].logprobs.content
    assert content and all(len(t.top_logprobs) == 3 for t in content)
    assert "".join(t.token for t in content) == chat.choices[0].message.content
    assert all(t.logprob <= 0 and t.logprob == t.top_logprobs[0].logprob for t in content)
    text = client.completions.create(
        model="llm-sft", prompt="How do I", max_tokens=4, temperature=0, logprobs=2
    )
    lp = text.choices[0].logprobs
    assert "".join(lp.tokens) == text.choices[0].text
    assert len(lp.token_logprobs) == len(lp.tokens) == len(lp.top_logprobs)
    assert lp.text_offset[0] == 0 and all(len(t) <= 2 for t in lp.top_logprobs)
    streamed = client.chat.completions.create(
        **CHAT, max_tokens=5, temperature=0, logprobs=True, stream=True
    )
    tokens = [
        t.token
        for c in streamed
        if c.choices and c.choices[0].logprobs
        for t in c.choices[0].logprobs.content
    ]
    assert "".join(tokens) == chat.choices[0].message.content


def test_json_by_grammar(client):
    schema = {"type": "string", "enum": ["yes", "no"]}
    answer = client.chat.completions.create(
        **CHAT,
        max_tokens=20,
        temperature=1.0,
        seed=1,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    )
    assert json.loads(answer.choices[0].message.content) in ("yes", "no")


def test_penalties_are_applied_not_dropped(client):
    ask = {**CHAT, "max_tokens": 12, "temperature": 0}
    plain = client.chat.completions.create(**ask, extra_body={"repetition_penalty": 1.0})
    pushed = client.chat.completions.create(
        **ask, presence_penalty=2.0, frequency_penalty=2.0, extra_body={"repetition_penalty": 1.0}
    )
    assert plain.choices[0].message.content != pushed.choices[0].message.content


def test_ignore_eos_generates_every_token_asked(client):
    for model in ("minit", "llm-sft"):
        done = client.completions.create(
            model=model,
            prompt="the ",
            max_tokens=24,
            temperature=0,
            extra_body={"ignore_eos": True},
        )
        assert done.usage.completion_tokens == 24 and done.choices[0].finish_reason == "length"


def test_seeded_streams_give_the_same_text_under_load(client):
    def ask(seed: int) -> str:
        stream = client.chat.completions.create(
            **CHAT, max_tokens=16, temperature=1.0, seed=seed, stream=True
        )
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    alone = [ask(seed) for seed in range(6)]
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(ask, range(6)))
    assert together == alone and len(set(alone)) > 1


def test_bad_values_are_4xx_naming_the_field(client):
    import openai

    for asked, field in (
        ({"top_logprobs": 30, "logprobs": True}, "top_logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"presence_penalty": 3.0}, "presence_penalty"),
        ({"response_format": {"type": "yaml"}}, "response_format"),
    ):
        with pytest.raises((openai.BadRequestError, openai.UnprocessableEntityError), match=field):
            client.chat.completions.create(**CHAT, max_tokens=2, **asked)


def test_top_logprobs_is_chats_only(client):
    import openai

    with pytest.raises(openai.BadRequestError, match="top_logprobs: not supported"):
        client.completions.create(
            model="minit", prompt="the ", max_tokens=2, logprobs=1, extra_body={"top_logprobs": 2}
        )


def test_the_transformers_backend_refuses_them_by_name(served_store, params_file_module):
    import openai

    with start_server(served_store, params_file_module, "--task", "llm-sft", "--no-ui") as plain:
        other = openai.OpenAI(base_url=plain.url + "/v1", api_key=plain.token, max_retries=0)
        with pytest.raises(
            openai.BadRequestError,
            match="logprobs: not supported by this server \\(the transformers backend\\)",
        ):
            other.chat.completions.create(**CHAT, max_tokens=2, logprobs=True)
        done = other.completions.create(
            model="minit",
            prompt="the ",
            max_tokens=24,
            temperature=0,
            extra_body={"ignore_eos": True},
        )
        assert done.usage.completion_tokens == 24


def test_an_alias_move_swaps_in_a_new_server_and_stops_the_old(
    served_store, params_file_module, llama_cpp_built
):
    """A new version (without a logged GGUF: converted on load) swaps in, answers, and the
    llama-server of the version it replaced exits."""
    import time

    import httpx
    import mlflow
    import psutil

    from tests.serve.conftest import _TrackingUri, register

    args = ("--task", "llm-sft", "--lm-backend", "llama.cpp", "--no-ui", "--reload-interval", "0")
    with start_server(served_store, params_file_module, *args) as srv:

        def servers() -> set[int]:
            children = psutil.Process(srv.proc.pid).children(recursive=True)
            return {p.pid for p in children if p.name() == "llama-server"}

        before = servers()
        assert len(before) == 2  # llm-sft and minit
        registry = mlflow.MlflowClient(tracking_uri=served_store.tracking_uri)
        experiment = registry.get_experiment_by_name("serve-fixtures").experiment_id
        with _TrackingUri(served_store.tracking_uri):
            case = served_store.champions["llm-sft"]
            version = register(registry, experiment, "llm-sft", case)
        registry.set_registered_model_alias("llm-sft", "champion", version)
        reloaded = httpx.post(srv.url + "/admin/reload", headers=srv.headers, timeout=180)
        assert reloaded.json()["results"]["llm-sft"] == "loaded", reloaded.text
        answer = httpx.post(
            srv.url + "/v1/tasks/llm-sft/predict",
            headers=srv.headers,
            json={"prompt": "How do I", "max_tokens": 3},
            timeout=60,
        ).json()
        assert answer["version"] == version
        deadline = time.monotonic() + 20
        while len(servers() & before) > 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        after = servers()
        assert len(after) == 2 and len(after & before) == 1  # minit's stays, llm-sft's is new
