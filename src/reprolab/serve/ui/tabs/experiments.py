"""The DVC experiments: `dvc exp show` as a sortable table of the params and metrics that
differ between experiments, and one metric plotted against one param."""

from __future__ import annotations

from typing import Any

import gradio as gr

from reprolab.serve.ui.client import ApiClient, fail
from reprolab.serve.ui.common import short

MAX_LABELS = 12


def build(client: ApiClient, page: gr.Blocks) -> None:
    gr.Markdown(
        "The workspace, its commit and the experiments on it (`dvc exp show`); only the "
        "params and metrics that differ between rows are shown, timings left out."
    )
    with gr.Row():
        every = gr.Checkbox(False, label="the last 20 commits (slower)", elem_id="exp-all")
        load = gr.Button("Load experiments", variant="primary", elem_id="exp-load")
    with gr.Row():
        contains = gr.Textbox(
            label="columns containing", placeholder="e.g. wine", elem_id="exp-filter"
        )
        sort_by = gr.Dropdown([], label="sort by", elem_id="exp-sort")
        descending = gr.Checkbox(True, label="descending")
    table = gr.Dataframe(label="experiments", interactive=False, wrap=True, elem_id="exp-table")
    with gr.Row():
        param = gr.Dropdown([], label="param (x)", elem_id="exp-param")
        metric = gr.Dropdown([], label="metric (y)", elem_id="exp-metric")
    plot = gr.Plot(label="metric against param", elem_id="exp-plot")
    data = gr.State(None)

    async def fetch(all_commits: bool) -> tuple[Any, ...]:
        found = await client.get("/v1/experiments", all_commits=str(all_commits).lower())
        params = [short(c) for c in found["params"]]
        metrics = [short(c) for c in found["metrics"]]
        return (
            found,
            gr.update(choices=[short(c) for c in found["columns"]], value=None),
            gr.update(choices=params, value=most_varied(found, found["params"])),
            gr.update(choices=metrics, value=most_varied(found, found["metrics"])),
        )

    def render(found: dict | None, text: str, key: str | None, desc: bool) -> Any:
        return frame(found, text, key, desc) if found else None

    def draw(found: dict | None, x: str | None, y: str | None) -> Any:
        if not found or not x or not y:
            return None
        return scatter(found, x, y)

    load.click(fetch, every, [data, sort_by, param, metric], api_visibility="private").then(
        render, [data, contains, sort_by, descending], table, api_visibility="private"
    ).then(draw, [data, param, metric], plot, api_visibility="private")
    for control in (contains, sort_by, descending):
        control.change(
            render, [data, contains, sort_by, descending], table, api_visibility="private"
        )
    for control in (param, metric):
        control.change(draw, [data, param, metric], plot, api_visibility="private")


def most_varied(found: dict, columns: list[str]) -> str | None:
    """The column with the most distinct numeric values (the one worth plotting first)."""
    import pandas as pd

    def spread(column: str) -> int:
        values = pd.to_numeric(pd.Series([r.get(column) for r in found["rows"]]), errors="coerce")
        return values.nunique()

    best = max(columns, key=spread, default=None)
    return short(best) if best is not None else None


def frame(found: dict, contains: str, sort_by: str | None, descending: bool) -> Any:
    import pandas as pd

    named = {short(c): c for c in found["columns"]}
    wanted = [c for c in named if c in ("name", "rev") or contains.lower() in c.lower()]
    rows = pd.DataFrame(
        [{c: row.get(named[c]) for c in wanted} for row in found["rows"]], columns=wanted
    )
    if sort_by in rows.columns:
        rows = rows.sort_values(sort_by, ascending=not descending, na_position="last", key=_key)
    return rows


def scatter(found: dict, x: str, y: str) -> Any:
    import pandas as pd

    from reprolab.core.figures import plt

    named = {short(c): c for c in found["columns"]}
    if x not in named or y not in named:
        raise fail(f"{x} / {y}: not columns of the table")
    points = pd.DataFrame(
        [(r.get(named[x]), r.get(named[y]), r["name"]) for r in found["rows"]],
        columns=["x", "y", "name"],
    ).dropna()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    numeric = pd.to_numeric(points["x"], errors="coerce").notna().all()
    xs = pd.to_numeric(points["x"]) if numeric else points["x"].astype(str)
    ax.scatter(xs, pd.to_numeric(points["y"], errors="coerce"), s=28)
    if len(points) <= MAX_LABELS:  # more names than that only hide the points
        for xv, yv, name in zip(xs, points["y"], points["name"], strict=True):
            ax.annotate(str(name), (xv, yv), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _key(column: Any) -> Any:
    import pandas as pd

    numbers = pd.to_numeric(column, errors="coerce")
    return numbers if numbers.notna().any() else column.astype(str)
