"""The web page at /ui: a tab per served task, a chat on the OpenAI-compatible route, the
registry (promote, roll back) and the DVC experiments. It is a Gradio app mounted in the
service, behind the service's token (a login form: your name, and the token as password),
and it acts only through the service's own HTTP API."""

from __future__ import annotations

import hmac
import os
from typing import Any

from fastapi import FastAPI

from reprolab.serve.settings import ServeSettings, ui_concurrency

PATH = "/ui"
QUEUE_MAX = 256  # events waiting for a turn; past it the page says the server is busy
LOGIN_MESSAGE = (
    "Sign in with your name (kept with any registry change you make) and the service's API "
    "token as the password."
)


def mount(
    app: FastAPI, settings: ServeSettings, params: Any, workloads: dict[str, str], lms: list[str]
) -> FastAPI:
    """Mount the page on `app`; `workloads`: task -> workload of each served task."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    from reprolab.serve.ui.client import ApiClient
    from reprolab.serve.ui.page import build, theme
    from reprolab.serve.ui.tabs.nuclei import example_folders

    client = ApiClient(settings.loopback_url, settings.token)
    shown = [
        str(folder)
        for task, workload in workloads.items()
        if workload == "nuclei"
        for folder in example_folders(params, task)
    ]
    blocks = build(client, params, workloads, lms, signed_in=settings.token is not None)
    # Gradio runs one of each event at a time unless told: two people chatting would wait on
    # each other. Past the limit, events queue and the page shows each one's place.
    blocks.queue(default_concurrency_limit=ui_concurrency(settings), max_size=QUEUE_MAX)
    return gr.mount_gradio_app(
        app,
        blocks,
        path=PATH,
        # without it an example picked in the page links its file under / instead of /ui
        root_path=PATH,
        auth=login(settings.token) if settings.token else None,
        auth_message=LOGIN_MESSAGE,
        theme=theme(),
        show_error=True,
        max_file_size=settings.max_body_bytes,
        allowed_paths=shown,  # the example images; nothing else of the disk
        ssr_mode=False,
    )


def login(token: str):
    """Gradio's login check: any non-empty name, and the token, compared in constant time."""
    expected = token.encode()

    def check(username: str, password: str) -> bool:
        return bool(username.strip()) and hmac.compare_digest(password.encode(), expected)

    return check
