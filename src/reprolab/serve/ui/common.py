"""What every tab shows: which model version answers for a task, in one line."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from reprolab.serve.ui.client import ApiClient


async def served_line(client: ApiClient, name: str) -> str:
    """'**wine-quality** answers with **v4** (wine-mlp, alias champion) · valid rmse 0.66'."""
    listed = await client.get("/v1/tasks")
    state = next((s for s in listed["tasks"] if s["task"] == name), None)
    if state is None:
        return f"**{name}** is not served"
    return describe(state)


def loader(client: ApiClient, name: str) -> Callable[[], Awaitable[str]]:
    """An async callback for `page.load` / buttons that refreshes a served line."""

    async def load() -> str:
        return await served_line(client, name)

    return load


def describe(state: dict[str, Any]) -> str:
    name = state["task"]
    if not state["ready"]:
        why = f": {state['error']}" if state.get("error") else ""
        return f"**{name}**: the model is still loading{why}"
    if not state.get("alias"):
        parts = [f"**{name}** answers with the model in `{state.get('source') or '?'}`"]
    else:
        model = f"{state['model']}, " if state.get("model") else ""
        parts = [
            f"**{name}** answers with **v{state['version']}** ({model}alias `{state['alias']}`)"
        ]
    metric = state.get("metric")
    if metric and metric.get("valid") is not None:
        test = f", test {metric['test']:.4g}" if metric.get("test") is not None else ""
        base = metric.get("baseline")
        vs = f" (baseline {base['name']} {base['score']:.4g})" if base else ""
        parts.append(f"· valid {metric['name']} {metric['valid']:.4g}{vs}{test}")
    if state.get("error"):
        parts.append(f"· last reload failed: {state['error']}")
    return " ".join(parts)


def short(column: str) -> str:
    """A dvc exp show column without its file path noise:
    'metrics.reports/eval/wine-quality/wine-rf/metrics.json:rmse' -> 'wine-quality/wine-rf:rmse'."""
    if column.startswith("params."):
        return column.removeprefix("params.")
    if column.startswith("metrics."):
        path, _, key = column.removeprefix("metrics.").partition(":")
        folder = path.rsplit("/", 1)[0]
        for prefix in ("reports/eval/", "reports/train/", "reports/"):
            folder = folder.removeprefix(prefix)
        stem = path.rsplit("/", 1)[-1].removesuffix(".json")
        return f"{folder}{'' if stem == 'metrics' else '/' + stem}:{key}"
    return column
