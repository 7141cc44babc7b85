"""A chat with any served language model, streamed token by token through the service's own
OpenAI-compatible /v1/chat/completions."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import gradio as gr

from reprolab.serve.ui.client import ApiClient
from reprolab.serve.ui.common import served_line

EXAMPLES = [
    "Write a Python function that returns the largest of three numbers.",
    "How do I reproduce a DVC pipeline?",
]


def build(client: ApiClient, models: list[str], page: gr.Blocks) -> None:
    served = gr.Markdown(elem_id="chat-served")
    with gr.Row():
        model = gr.Dropdown(models, value=models[0], label="model", elem_id="chat-model")
        temperature = gr.Slider(
            0.0, 2.0, 0.7, step=0.05, label="temperature (0: greedy)", elem_id="chat-temperature"
        )
        max_tokens = gr.Slider(1, 512, 96, step=1, label="max tokens", elem_id="chat-max-tokens")

    status = gr.Markdown(elem_id="chat-status")

    async def reply(
        message: str, history: list[dict[str, Any]], name: str, temp: float, limit: float
    ) -> AsyncIterator[tuple[str, str]]:
        messages = [{"role": m["role"], "content": _text(m["content"])} for m in history]
        body = {
            "model": name,
            "messages": [*messages, {"role": "user", "content": message}],
            "temperature": temp,
            "max_tokens": int(limit),
        }
        text, start = "", time.perf_counter()
        turn = sum(m["role"] == "assistant" for m in history) + 1
        yield "", f"answer {turn}: {name} is answering…"
        async for delta in client.stream_chat(body):
            text += delta
            yield text, f"answer {turn}: {name} is answering…"
        yield text, f"answer {turn}: {name} answered in {time.perf_counter() - start:.1f} s"

    gr.ChatInterface(
        reply,
        additional_inputs=[model, temperature, max_tokens],
        examples=[[e, models[0], 0.7, 96] for e in EXAMPLES],
        run_examples_on_click=False,
        chatbot=gr.Chatbot(label="chat", height=360, elem_id="chat-box"),
        textbox=gr.Textbox(placeholder="Ask something", label="message", elem_id="chat-input"),
        additional_outputs=[status],
        api_visibility="private",
    )

    async def line(name: str) -> str:
        return await served_line(client, name)

    model.change(line, model, served, api_visibility="private")
    page.load(line, model, served)


def _text(content: Any) -> str:
    """Chat history content as plain text (Gradio may hold a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return str(content)
