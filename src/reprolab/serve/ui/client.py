"""The page's way to the service: HTTP to the service's own address with its token, so every
action passes the same auth, validation and metrics as any other client. An error answer
becomes a gr.Error with the API's one-line message (the page shows it; no stack trace)."""

from __future__ import annotations

import html
import json
from collections.abc import AsyncIterator
from typing import Any

import gradio as gr
import httpx

TIMEOUT = httpx.Timeout(300.0, connect=5.0)  # a first LLM answer on a busy CPU can be slow


class ApiClient:
    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, headers=self.headers, timeout=TIMEOUT)

    async def get(self, path: str, **params: Any) -> Any:
        async with self._client() as client:
            return _answer(await _send(client.get(path, params=params)))

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        async with self._client() as client:
            return _answer(await _send(client.post(path, json=body, **kwargs)))

    async def stream_chat(self, body: dict[str, Any]) -> AsyncIterator[str]:
        """The text deltas of a streamed /v1/chat/completions answer, as they arrive."""
        async with self._client() as client:
            try:
                async with client.stream(
                    "POST", "/v1/chat/completions", json={**body, "stream": True}
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        _answer(response)
                    async for line in response.aiter_lines():
                        if not line.startswith("data: ") or line == "data: [DONE]":
                            continue
                        chunk = json.loads(line.removeprefix("data: "))
                        if "error" in chunk:
                            raise fail(chunk["error"]["message"])
                        for choice in chunk.get("choices", []):
                            delta = choice.get("delta", {}).get("content")
                            if delta:
                                yield delta
            except httpx.HTTPError as err:
                raise fail(f"the service did not answer: {err}") from err


async def _send(request: Any) -> httpx.Response:
    try:
        return await request
    except httpx.HTTPError as err:
        raise fail(f"the service did not answer: {err}") from err


def _answer(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        error = body.get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else response.text[:300]
        raise fail(f"{message} (HTTP {response.status_code})")
    return body


def fail(message: str) -> gr.Error:
    """The error the page shows: the message as text (gr.Error renders HTML)."""
    return gr.Error(html.escape(message), print_exception=False)
