"""`reprolab serve` over real HTTP (uvicorn on a free loopback port) against a real MLflow
store of tiny models: every task's predict route, auth, the official `openai` client
(streamed and not), bad input as 4xx with the field named, metrics, and a champion promoted
while a client keeps sending requests."""

from __future__ import annotations

import base64
import io
import json
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from reprolab.ops.bench_serve import WINE_ROW
from tests.serve.conftest import start_server
from tests.serve.test_limits import rss_mib


def post(server, path: str, body=None, **kwargs) -> httpx.Response:
    headers = {**server.headers, **kwargs.pop("headers", {})}
    return httpx.post(server.url + path, json=body, headers=headers, timeout=60, **kwargs)


def png(height: int = 40, width: int = 48) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = (rng.random((height, width, 3)) * 60).astype(np.uint8)
    rgb[10:20, 10:22] = 220  # a bright nucleus
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------- each task


def test_tasks_lists_every_model_with_its_version(server):
    answer = httpx.get(server.url + "/v1/tasks", headers=server.headers).json()
    by_task = {m["task"]: m for m in answer["tasks"]}
    assert {
        "wine-quality",
        "nsmc-sentiment",
        "nuclei-segmentation",
        "pid-control",
        "llm-sft",
    } <= set(by_task)
    wine = by_task["wine-quality"]
    assert wine["alias"] == "champion" and wine["version"] == "1" and wine["ready"]
    assert wine["run_id"] and wine["loaded_at"].endswith("Z")
    assert wine["metric"] == {  # untagged here
        "name": "rmse",
        "valid": None,
        "test": None,
        "baseline": {"name": "mean predictor", "score": 0.8797},
    }
    assert by_task["minit"]["alias"] is None  # a fixed directory, not watched


def test_wine_rows_give_grades(server):
    answer = post(server, "/v1/tasks/wine-quality/predict", {"rows": [WINE_ROW, WINE_ROW]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["task"] == "wine-quality" and body["version"] == "1"
    assert len(body["grades"]) == 2 and 0 < body["grades"][0] < 12
    assert body["grades"][0] == pytest.approx(body["grades"][1])


def test_sentiment_texts_give_labels_and_probabilities(server):
    texts = ["정말 재밌어요 최고", "너무 지루하다 별로", "   "]
    body = post(server, "/v1/tasks/nsmc-sentiment/predict", {"texts": texts}).json()
    first, _, empty = body["predictions"]
    assert first["text"] == texts[0] and first["label"] in ("negative", "positive")
    assert sum(first["probs"].values()) == pytest.approx(1.0)
    assert first["confidence"] == pytest.approx(max(first["probs"].values()))
    assert empty["label"] is None and "empty" in empty["note"]


def test_nuclei_image_gives_an_rle_mask_from_json_or_upload(server):
    image = png()
    as_json = post(
        server,
        "/v1/tasks/nuclei-segmentation/predict",
        {"image": base64.b64encode(image).decode(), "overlay": True},
    ).json()
    assert (as_json["width"], as_json["height"]) == (48, 40)
    assert 0 <= as_json["foreground_fraction"] <= 1
    assert as_json["objects"] >= 0 and (as_json["objects"] > 0) == (
        as_json["foreground_fraction"] > 0
    )
    runs = [int(v) for v in as_json["rle"].split()]
    assert len(runs) % 2 == 0 and sum(runs[1::2]) == round(as_json["foreground_fraction"] * 48 * 40)
    from PIL import Image

    overlay = Image.open(io.BytesIO(base64.b64decode(as_json["overlay_png"])))
    assert overlay.size == (48, 40)
    upload = httpx.post(
        server.url + "/v1/tasks/nuclei-segmentation/predict/image",
        files={"image": ("cells.png", image, "image/png")},
        headers=server.headers,
        timeout=60,
    ).json()
    assert upload["rle"] == as_json["rle"] and upload["overlay_png"] is None


def test_pid_plant_gives_gains_and_simulated_iae(server):
    plants = [
        {"kind": "fopdt", "gain": 1.5, "delay": 0.5, "time_constant": 3.0},
        {"kind": "integrating", "gain": 0.2, "delay": 0.4},
    ]
    body = post(server, "/v1/tasks/pid-control/predict", {"plants": plants}).json()
    assert len(body["results"]) == 2
    for result in body["results"]:
        assert min(result["kp"], result["ki"], result["kd"]) >= 0
        assert result["diverged"] or result["iae"] > 0


def test_pid_compare_and_trajectory_add_baselines_and_step_responses(server):
    plant = {"kind": "fopdt", "gain": 1.5, "delay": 0.8, "time_constant": 3.0}
    body = post(
        server,
        "/v1/tasks/pid-control/predict",
        {"plants": [plant, plant], "compare": True, "trajectory": True},
    ).json()
    first, second = body["results"]
    assert set(first["baselines"]) == {"ziegler_nichols", "simc"}
    zn = first["baselines"]["ziegler_nichols"]
    assert zn["kp"] > 0 and (zn["diverged"] or zn["iae"] > 0)
    response = first["response"]
    assert set(response["y"]) == {"pidnet", "ziegler_nichols", "simc"}
    assert 50 <= len(response["t"]) <= 300 and response["t"][0] == 0
    assert all(len(y) == len(response["t"]) for y in response["y"].values())
    assert first == second  # the same plant twice: the same loops
    plain = post(server, "/v1/tasks/pid-control/predict", {"plants": [plant]}).json()
    assert "baselines" not in plain["results"][0] and "response" not in plain["results"][0]
    assert plain["results"][0]["iae"] == pytest.approx(first["iae"])
    many = post(
        server, "/v1/tasks/pid-control/predict", {"plants": [plant] * 17, "trajectory": True}
    )
    assert many.status_code == 422 and "at most 16 plants" in many.json()["error"]["message"]


def test_llm_prompt_and_instruction_give_text(server):
    body = post(server, "/v1/tasks/llm-sft/predict", {"prompt": "How do I", "max_tokens": 3}).json()
    assert isinstance(body["text"], str) and body["usage"]["completion_tokens"] <= 3
    assert body["finish_reason"] in ("stop", "length")
    both = post(server, "/v1/tasks/llm-sft/predict", {"prompt": "a", "instruction": "b"})
    assert both.status_code == 422 and "exactly one" in both.json()["error"]["message"]


def test_openapi_types_each_task_route(server):
    schema = httpx.get(server.url + "/openapi.json").json()
    refs = {
        path: op["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for path, op in schema["paths"].items()
        if path.startswith("/v1/tasks/") and path.endswith("/predict")
    }
    assert refs == {
        "/v1/tasks/wine-quality/predict": "#/components/schemas/WineRequest",
        "/v1/tasks/nsmc-sentiment/predict": "#/components/schemas/SentimentRequest",
        "/v1/tasks/nuclei-segmentation/predict": "#/components/schemas/NucleiRequest",
        "/v1/tasks/pid-control/predict": "#/components/schemas/ControlRequest",
        "/v1/tasks/llm-sft/predict": "#/components/schemas/LlmRequest",
    }
    wine_row = schema["components"]["schemas"]["WineRow"]["properties"]
    assert "fixed acidity" in wine_row and wine_row["pH"]["maximum"] == 14
    assert httpx.get(server.url + "/docs").status_code == 200


# ---------------------------------------------------------------- auth


def test_token_is_required_except_for_health_and_ready(server):
    assert httpx.get(server.url + "/health").status_code == 200
    assert httpx.get(server.url + "/ready").status_code == 200
    missing = httpx.get(server.url + "/v1/tasks")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    wrong = httpx.get(server.url + "/v1/tasks", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    assert httpx.get(server.url + "/metrics").status_code == 401
    assert httpx.get(server.url + "/v1/tasks", headers=server.headers).status_code == 200


def test_no_token_means_loopback_only():
    result = subprocess.run(
        [sys.executable, "-m", "reprolab", "serve", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode == 1
    assert "REPROLAB_API_TOKEN" in result.stderr and "--insecure" in result.stderr


# ---------------------------------------------------------------- bad requests

PLANT = {"kind": "fopdt", "gain": 1.5, "delay": 0.8, "time_constant": 3.0}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/tasks/wine-quality/predict", {"rows": [{**WINE_ROW, "pH": "acid"}]}, "rows[0].pH"),
        ("/v1/tasks/wine-quality/predict", {"rows": [{**WINE_ROW, "alcohol": -1}]}, "alcohol"),
        ("/v1/tasks/wine-quality/predict", {"rows": []}, "rows"),
        ("/v1/tasks/nsmc-sentiment/predict", {"texts": [3]}, "texts[0]"),
        (
            "/v1/tasks/pid-control/predict",
            {"plants": [{"kind": "x", "gain": 1, "delay": 1}]},
            "kind",
        ),
        ("/v1/tasks/nuclei-segmentation/predict", {"image": "not base64!"}, "image"),
        (
            "/v1/tasks/nuclei-segmentation/predict",
            {"image": base64.b64encode(b"plain text").decode()},
            "image",
        ),
        ("/v1/completions", {"model": "minit", "prompt": "the", "temperature": 9}, "temperature"),
        # no coercion: what the schema calls a number or a boolean must be one
        ("/v1/tasks/wine-quality/predict", {"rows": [{**WINE_ROW, "is_red": False}]}, "is_red"),
        (
            "/v1/tasks/nsmc-sentiment/predict",
            {"texts": ["좋다"], "return_probs": 0},
            "return_probs",
        ),
        ("/v1/completions", {"model": "minit", "prompt": "the", "seed": "5"}, "seed"),
        (
            "/v1/completions",
            {"model": "minit", "prompt": "the", "stream_options": {"include_usage": 0}},
            "include_usage",
        ),
        # what the server checks, its schema states
        ("/v1/completions", {"model": "minit", "prompt": " \n "}, "prompt"),
        ("/v1/tasks/llm-sft/predict", {"prompt": "Hi", "max_tokens": 5000}, "max_tokens"),
        ("/v1/tasks/pid-control/predict", {"plants": [PLANT | {"gain": 0}]}, "gain"),
        ("/v1/tasks/pid-control/predict", {"plants": [PLANT | {"delay": 1e3}]}, "delay"),
        (
            "/v1/tasks/pid-control/predict",
            {"plants": [PLANT | {"kind": "sopdt", "damping": 1.5}]},
            "damping",
        ),
    ],
)
def test_bad_input_is_422_naming_the_field(server, path, body, field):
    answer = post(server, path, body)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert field in error["message"] and error["code"] == 422
    assert "\n" not in error["message"]


def test_unknown_task_or_model_is_404_and_body_limits_are_413(server):
    assert post(server, "/v1/tasks/nope/predict", {}).status_code == 404
    gone = post(server, "/v1/completions", {"model": "gpt-9", "prompt": "x"})
    assert gone.status_code == 404 and "minit" in gone.json()["error"]["message"]
    huge = post(server, "/v1/tasks/nsmc-sentiment/predict", {"texts": ["x" * 9000] * 2000})
    assert huge.status_code == 413 and huge.json()["error"]["code"] == 413
    too_long = post(
        server, "/v1/completions", {"model": "llm-sft", "prompt": "Hi", "max_tokens": 1000}
    )
    assert too_long.status_code == 400 and "context" in too_long.json()["error"]["message"]
    capped = post(
        server, "/v1/completions", {"model": "minit", "prompt": "the", "max_tokens": 5000}
    )
    assert capped.status_code == 422 and "1024" in capped.json()["error"]["message"]


# ---------------------------------------------------------------- OpenAI compatibility


@pytest.fixture(scope="module")
def client(server):
    import openai

    return openai.OpenAI(base_url=server.url + "/v1", api_key=server.token, max_retries=0)


def test_openai_client_lists_and_completes(client):
    assert {m.id for m in client.models.list()} == {"llm-sft", "minit"}
    done = client.completions.create(model="minit", prompt="the ", max_tokens=5, temperature=0)
    assert done.choices[0].finish_reason in ("stop", "length")
    assert done.usage.prompt_tokens == 4 and done.usage.completion_tokens <= 5
    again = client.completions.create(model="minit", prompt="the ", max_tokens=5, temperature=0)
    assert again.choices[0].text == done.choices[0].text  # greedy is deterministic


def test_openai_client_streams_with_usage(client):
    whole = client.completions.create(model="minit", prompt="the ", max_tokens=6, temperature=0)
    stream = client.completions.create(
        model="minit",
        prompt="the ",
        max_tokens=6,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == whole.choices[0].text
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_openai_chat_streamed_and_not(client):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    done = client.chat.completions.create(
        model="llm-sft", messages=messages, max_tokens=4, temperature=0
    )
    assert done.choices[0].message.role == "assistant"
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    stream = client.chat.completions.create(
        model="llm-sft", messages=messages, max_tokens=4, temperature=0, stream=True
    )
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(pieces) == done.choices[0].message.content


def test_stop_and_seed_are_honoured(client):
    free = client.completions.create(model="minit", prompt="the ", max_tokens=8, temperature=0)
    text = free.choices[0].text
    if len(text) >= 3:
        stop = text[2:4]
        cut = client.completions.create(
            model="minit", prompt="the ", max_tokens=8, temperature=0, stop=[stop]
        )
        assert cut.choices[0].text == text[: text.find(stop)]
        assert cut.choices[0].finish_reason == "stop"
    sampled = [
        client.completions.create(
            model="minit", prompt="the ", max_tokens=8, temperature=1.0, seed=7
        )
        .choices[0]
        .text
        for _ in range(2)
    ]
    assert sampled[0] == sampled[1]


def test_n_choices_each_reproducible_and_echo(client):
    """n=3 with seed 7: three choices, choice i as a single request with seed 7 + i gives it;
    streamed, the same texts under their indexes; usage sums the choices' tokens."""
    ask = {"model": "minit", "prompt": "the ", "max_tokens": 6, "temperature": 1.0}
    many = client.completions.create(**ask, n=3, seed=7)
    assert [c.index for c in many.choices] == [0, 1, 2]
    texts = [c.text for c in many.choices]
    alone = [client.completions.create(**ask, seed=7 + i).choices[0].text for i in range(3)]
    assert texts == alone and len(set(texts)) > 1
    generated = [client.completions.create(**ask, seed=7 + i).usage for i in range(3)]
    assert many.usage.completion_tokens == sum(u.completion_tokens for u in generated)
    assert many.usage.prompt_tokens == generated[0].prompt_tokens
    streamed = ["", "", ""]
    for chunk in client.completions.create(**ask, n=3, seed=7, stream=True):
        for choice in chunk.choices:
            streamed[choice.index] += choice.text
    assert streamed == texts
    echoed = client.completions.create(**ask, seed=7, echo=True)
    assert echoed.choices[0].text == "the " + texts[0]
    chat = {"model": "llm-sft", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3}
    two = client.chat.completions.create(**chat, n=2, temperature=1.0, seed=3)
    assert [c.index for c in two.choices] == [0, 1]
    pieces = ["", ""]
    for chunk in client.chat.completions.create(**chat, n=2, temperature=1.0, seed=3, stream=True):
        for choice in chunk.choices:
            pieces[choice.index] += choice.delta.content or ""
    assert pieces == [c.message.content for c in two.choices]


def test_unsupported_parameters_are_refused_by_name_not_dropped(client):
    import openai

    for asked in ({"logprobs": 2}, {"presence_penalty": 0.5}, {"best_of": 3}):
        (name,) = asked
        with pytest.raises(openai.BadRequestError, match=f"{name}: not supported"):
            client.completions.create(model="minit", prompt="the ", max_tokens=2, **asked)
    chat = {"model": "minit", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    for asked in (
        {"response_format": {"type": "json_object"}},
        {"tools": [tool]},
        {"logprobs": True, "top_logprobs": 3},
        {"frequency_penalty": 1.0},
        {"logit_bias": {"5": 10}},
    ):
        with pytest.raises(openai.BadRequestError, match=f"{next(iter(asked))}: not supported"):
            client.chat.completions.create(**chat, **asked)
    # the values that change nothing are accepted, as OpenAI's defaults
    plain = client.chat.completions.create(
        **chat, presence_penalty=0, logprobs=False, response_format={"type": "text"}
    )
    assert plain.choices[0].finish_reason in ("stop", "length")


# ---------------------------------------------------------------- a battery of bad requests
# Malformed and hostile requests on every task route and the OpenAI routes: each answer is a
# 4xx naming the field, or a completed answer; never a 5xx and never a hang. Twenty streams
# at once all finish, a client that leaves mid-stream costs nothing, and the process's memory
# comes back near where it started.

TIMEOUT = 60.0  # a hang fails here rather than holding the suite
TASKS = {
    "wine-quality": {"rows": [WINE_ROW]},
    "nsmc-sentiment": {"texts": ["좋아요"]},
    "pid-control": {"plants": [{"kind": "fopdt", "gain": 1.5, "delay": 0.8}]},
    "llm-sft": {"prompt": "Hi", "max_tokens": 2},
}


def blank_png(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims `width` x `height` in its header and holds almost nothing."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def malformed(task: str, good: dict) -> list[tuple[str, bytes | None, object]]:
    """(what, raw body or None, JSON body) of each bad request for one task route."""
    first = next(iter(good))
    return [
        ("empty body", b"", None),
        ("not JSON", b"{rows", None),
        ("a list, not an object", None, [good]),
        ("the wrong type", None, {first: 12345}),
        ("an unknown field", None, {**good, "extra": 1}),
        ("null", None, {first: None}),
        ("too many items", None, {first: [good[first][0]] * 5000}),
    ]


IMAGES = [
    ("bad base64", "%%% not base64 %%%"),
    ("not an image", b64(b"plain text, not pixels")),
    ("a 0-byte image", ""),
    ("a 1x1 image", b64(blank_png(1, 1))),
    ("a header claiming 10000x10000", b64(png_header_only(10000, 10000))),
    ("a truncated PNG", b64(blank_png(64, 64)[:40])),
]


def ok_or_named_4xx(answer: httpx.Response, what: str) -> None:
    assert answer.status_code < 500, f"{what}: {answer.status_code} {answer.text[:300]}"
    if answer.status_code >= 400:
        error = answer.json()["error"]
        assert error["code"] == answer.status_code, what
        assert error["message"] and "\n" not in error["message"], what
        assert "Traceback" not in answer.text, what


@pytest.mark.slow
def test_every_task_route_refuses_malformed_bodies_by_name(server):
    before = rss_mib(server.proc.pid)
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=TIMEOUT) as http:
        for task, good in TASKS.items():
            route = f"/v1/tasks/{task}/predict"
            assert http.post(route, json=good).status_code == 200, task
            for what, raw, body in malformed(task, good):
                if raw is not None:
                    answer = http.post(
                        route, content=raw, headers={"content-type": "application/json"}
                    )
                else:
                    answer = http.post(route, json=body)
                ok_or_named_4xx(answer, f"{task}: {what}")
                assert answer.status_code >= 400, f"{task}: {what} was accepted"
        route = "/v1/tasks/nuclei-segmentation/predict"
        for what, image in IMAGES:
            answer = http.post(route, json={"image": image})
            ok_or_named_4xx(answer, f"nuclei: {what}")
            if what != "a 1x1 image":
                assert answer.status_code in (413, 422), f"nuclei: {what}: {answer.text[:200]}"
        for what, image in IMAGES[1:]:
            files = {"image": ("x.png", base64.b64decode(image), "image/png")}
            ok_or_named_4xx(http.post(route + "/image", files=files), f"upload: {what}")
        huge = b'{"rows": [' + b'{"a": 1},' * 3_000_000 + b'{"a": 1}]}'  # over 16 MiB
        answer = http.post(
            "/v1/tasks/wine-quality/predict",
            content=huge,
            headers={"content-type": "application/json"},
        )
        assert answer.status_code == 413
    assert rss_mib(server.proc.pid) - before < 400


@pytest.mark.parametrize(
    ("what", "body", "field"),
    [
        ("max_tokens 10^9", {"max_tokens": 10**9}, "max_tokens"),
        ("a negative temperature", {"temperature": -1}, "temperature"),
        ("top_p 0", {"top_p": 0}, "top_p"),
        ("stop of the wrong type", {"stop": 3}, "stop"),
        ("a prompt over the cap", {"prompt": "x" * 300_000}, "prompt"),
        ("no prompt", {"prompt": ""}, "prompt"),
        ("an unknown model", {"model": "gpt-9"}, "model"),
    ],
)
def test_openai_routes_refuse_bad_settings_by_name(server, what, body, field):
    full = {"model": "minit", "prompt": "the ", "max_tokens": 4, **body}
    answer = httpx.post(
        server.url + "/v1/completions", json=full, headers=server.headers, timeout=TIMEOUT
    )
    ok_or_named_4xx(answer, what)
    assert 400 <= answer.status_code < 500, f"{what}: {answer.text[:300]}"
    assert field in answer.text, f"{what}: {answer.text[:300]}"


def stream(server, i: int) -> str:
    body = {
        "model": "minit",
        "prompt": "the ",
        "max_tokens": 8,
        "stream": True,
        "seed": i,
        "temperature": 1.0,
    }
    text = ""
    with httpx.stream(
        "POST", server.url + "/v1/completions", json=body, headers=server.headers, timeout=TIMEOUT
    ) as answer:
        assert answer.status_code == 200, answer.read()[:300]
        for line in answer.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunk = json.loads(line.removeprefix("data: "))
                text += "".join(c["text"] for c in chunk.get("choices", []))
            if line == "data: [DONE]":
                return text
    raise AssertionError(f"stream {i} ended without [DONE]")


@pytest.mark.slow
def test_twenty_streams_at_once_and_a_client_that_leaves(server):
    before = rss_mib(server.proc.pid)
    body = {"model": "minit", "prompt": "the ", "stream": True}  # as long as its context allows
    with httpx.stream(
        "POST", server.url + "/v1/completions", json=body, headers=server.headers, timeout=TIMEOUT
    ) as leaving:
        assert leaving.status_code == 200
        next(leaving.iter_lines())  # one piece, then the client is gone
    with ThreadPoolExecutor(20) as pool:
        texts = list(pool.map(lambda i: stream(server, i), range(20)))
    assert all(isinstance(t, str) for t in texts) and len(texts) == 20
    assert httpx.get(server.url + "/health", timeout=5).status_code == 200
    metrics = httpx.get(server.url + "/metrics", headers=server.headers).text
    assert 'reprolab_num_requests_running{model_name="minit"} 0.0' in metrics
    assert rss_mib(server.proc.pid) - before < 400


# ---------------------------------------------------------------- metrics, hot swap


def test_metrics_count_requests_and_tokens(server, client):
    post(server, "/v1/tasks/wine-quality/predict", {"rows": [WINE_ROW]})
    client.completions.create(model="minit", prompt="the ", max_tokens=3, temperature=0)
    text = httpx.get(server.url + "/metrics", headers=server.headers).text
    assert (
        'reprolab_http_requests_total{route="/v1/tasks/wine-quality/predict",status="200",'
        'task="wine-quality"}' in text
    )
    assert 'reprolab_model_info{alias="champion",task="wine-quality",version="1"} 1.0' in text
    # vLLM's names and label: its dashboard's panels read these with the prefix changed
    assert 'reprolab_time_to_first_token_seconds_count{model_name="minit"}' in text
    assert 'reprolab_generation_tokens_total{model_name="minit"}' in text
    assert 'reprolab_request_success_total{finished_reason="length",model_name="minit"}' in text
    assert 'reprolab_num_requests_running{model_name="minit"} 0.0' in text  # all finished
    assert 'reprolab_num_requests_waiting{model_name="minit"} 0.0' in text
    assert 'reprolab_model_reloads_total{result="ok",task="wine-quality"}' in text


def test_promoting_a_version_swaps_it_in_without_failed_requests(
    served_store, params_file_module, server
):
    """Runs last in this module: it moves wine's champion. Three clients send requests one
    after another while a person promotes version 2 with the CLI."""
    import os

    v2 = served_store.wine_v2
    seen: list[list[tuple[int, str | None]]] = [[], [], []]
    stop = threading.Event()

    def hammer(mine: list) -> None:
        with httpx.Client(headers=server.headers, timeout=30) as http:
            while not stop.is_set():
                r = http.post(
                    server.url + "/v1/tasks/wine-quality/predict", json={"rows": [WINE_ROW]}
                )
                mine.append((r.status_code, r.json().get("version")))

    threads = [threading.Thread(target=hammer, args=(mine,)) for mine in seen]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        promoted = subprocess.run(
            [
                *(sys.executable, "-m", "reprolab", "registry", "promote", "wine-quality", v2),
                *("--reason", "hot-swap test", "--force", "--params", str(params_file_module)),
            ],
            capture_output=True,
            text=True,
            cwd=params_file_module.parent,
            env={**os.environ, "MLFLOW_TRACKING_URI": served_store.tracking_uri},
            timeout=120,
        )
        assert promoted.returncode == 0, promoted.stderr
        deadline = time.time() + 60
        while time.time() < deadline and not all(m and m[-1][1] == v2 for m in seen):
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    answers = [a for mine in seen for a in mine]
    assert answers and all(status == 200 for status, _ in answers), {s for s, _ in answers}
    for mine in seen:  # each client: the old version, then the new one for good
        versions = [v for _, v in mine]
        assert versions[0] == "1" and versions[-1] == v2
        assert set(versions[versions.index(v2) :]) == {v2}
    tasks = httpx.get(server.url + "/v1/tasks", headers=server.headers).json()["tasks"]
    assert next(t for t in tasks if t["task"] == "wine-quality")["version"] == v2


def test_a_failed_load_keeps_the_old_model(served_store, params_file, tmp_path):
    """The alias moves to a version that cannot load: the old model keeps answering, and
    /ready, /v1/tasks and the metrics say what failed."""
    import mlflow

    empty = tmp_path / "not-a-model"
    empty.mkdir()
    (empty / "README").write_text("no MLmodel here")
    with start_server(
        served_store, params_file, "--task", "wine-quality", "--reload-interval", "0"
    ) as srv:
        before = post(srv, "/v1/tasks/wine-quality/predict", {"rows": [WINE_ROW]}).json()
        registry = mlflow.MlflowClient(tracking_uri=served_store.tracking_uri)
        broken = registry.create_model_version("wine-quality", source=empty.as_uri())
        registry.set_registered_model_alias("wine-quality", "champion", broken.version)
        reloaded = post(srv, "/admin/reload").json()
        assert reloaded["results"]["wine-quality"] == "failed"
        after = post(srv, "/v1/tasks/wine-quality/predict", {"rows": [WINE_ROW]})
        assert after.status_code == 200 and after.json()["version"] == before["version"]
        ready = httpx.get(srv.url + "/ready").json()
        state = next(m for m in ready["models"] if m["task"] == "wine-quality")
        assert ready["ready"] and state["error"] and state["version"] == before["version"]
        metrics = httpx.get(srv.url + "/metrics", headers=srv.headers).text
        assert 'reprolab_model_reloads_total{result="failed",task="wine-quality"} 1.0' in metrics
