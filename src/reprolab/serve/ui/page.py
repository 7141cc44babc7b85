"""The page: a tab per served task (by its workload), a chat when a language model is served,
the registry and the experiments."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import gradio as gr

from reprolab.serve.ui.client import ApiClient
from reprolab.serve.ui.tabs import chat, experiments, registry

TITLES = {  # workload -> tab title; a workload without a tab module here gets no task tab
    "wine": "Wine quality",
    "sentiment": "Sentiment",
    "nuclei": "Nuclei",
    "control": "PID control",
}
CHAT_WORKLOADS = ("llm",)  # served as models of the chat tab


def build(
    client: ApiClient,
    params: Any,
    workloads: dict[str, str],
    lms: list[str],
    signed_in: bool,
) -> gr.Blocks:
    with gr.Blocks(title="reprolab", analytics_enabled=False) as page:
        gr.Markdown(
            "# reprolab\nEvery task's served model, tried by hand. The page goes through the "
            "service's own API ([docs](/docs)); the MLflow UI (`make ui`) has the runs."
        )
        who = gr.Markdown(elem_id="signed-in")
        with gr.Tabs():
            for task, workload in workloads.items():
                if workload not in TITLES:
                    continue
                with gr.Tab(TITLES[workload], id=task, elem_id=f"tab-{task}"):
                    tab = import_module(f"reprolab.serve.ui.tabs.{workload}")
                    tab.build(client, task, params, page)
            models = [t for t, w in workloads.items() if w in CHAT_WORKLOADS] + [
                n for n in lms if n not in workloads
            ]
            if models:
                with gr.Tab("Chat", id="chat", elem_id="tab-chat"):
                    chat.build(client, models, page)
            if workloads:
                with gr.Tab("Registry", id="registry", elem_id="tab-registry"):
                    registry.build(client, list(workloads), page)
            with gr.Tab("Experiments", id="experiments", elem_id="tab-experiments"):
                experiments.build(client, page)

        def greet(request: gr.Request) -> str:
            if not signed_in:
                return "No API token is set: the service listens on this machine only."
            return f"Signed in as **{request.username}** · [sign out](/ui/logout)"

        page.load(greet, None, who)
    return page


def theme() -> gr.themes.Base:
    """Gradio's default look with the system's fonts: nothing fetched from a font CDN."""
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "monospace"],
    )
