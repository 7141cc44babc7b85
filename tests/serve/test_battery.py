"""A battery of malformed and hostile requests against the live service: every task route
and the OpenAI routes. Each answer is a 4xx naming the field, or a completed answer; never a
5xx and never a hang. Twenty streams at once all finish, a client that leaves mid-stream
costs nothing, and the process's memory comes back near where it started."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from reprolab.ops.bench_serve import WINE_ROW
from tests.serve.test_limits import rss_mib

pytestmark = pytest.mark.slow

TIMEOUT = 60.0  # a hang fails here rather than holding the suite
TASKS = {
    "wine-quality": {"rows": [WINE_ROW]},
    "nsmc-sentiment": {"texts": ["좋아요"]},
    "pid-control": {"plants": [{"kind": "fopdt", "gain": 1.5, "delay": 0.8}]},
    "llm-sft": {"prompt": "Hi", "max_tokens": 2},
}


def png(width: int, height: int) -> bytes:
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
    ("a 1x1 image", b64(png(1, 1))),
    ("a header claiming 10000x10000", b64(png_header_only(10000, 10000))),
    ("a truncated PNG", b64(png(64, 64)[:40])),
]


def ok_or_named_4xx(answer: httpx.Response, what: str) -> None:
    assert answer.status_code < 500, f"{what}: {answer.status_code} {answer.text[:300]}"
    if answer.status_code >= 400:
        error = answer.json()["error"]
        assert error["code"] == answer.status_code, what
        assert error["message"] and "\n" not in error["message"], what
        assert "Traceback" not in answer.text, what


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
        "max_tokens": 24,
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


def test_twenty_streams_at_once_and_a_client_that_leaves(server):
    before = rss_mib(server.proc.pid)
    body = {"model": "minit", "prompt": "the ", "max_tokens": 512, "stream": True}
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
