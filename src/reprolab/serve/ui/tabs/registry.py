"""The registry: each task's versions with valid and test metric, aliases, a link to the run
in the MLflow UI, lineage and the alias history; promote and roll back after a confirmation,
through the service's registry routes (the same code as `reprolab registry`). The served
model follows at once."""

from __future__ import annotations

from typing import Any

import gradio as gr

from reprolab.serve.ui.client import ApiClient, fail

PREVIOUS = "the previous champion"
HISTORY = ["time", "alias", "from", "to", "by", "reason"]


def build(client: ApiClient, tasks: list[str], page: gr.Blocks) -> None:
    with gr.Row():
        task = gr.Dropdown(tasks, value=tasks[0], label="task", elem_id="registry-task")
        refresh = gr.Button("Refresh", elem_id="registry-refresh")
    summary = gr.Markdown(elem_id="registry-summary")
    versions = gr.Dataframe(
        label="versions (newest first)",
        interactive=False,
        wrap=True,
        elem_id="registry-versions",
    )
    with gr.Row():
        version = gr.Dropdown([], label="version to promote", elem_id="registry-version")
        target = gr.Dropdown(
            [PREVIOUS], value=PREVIOUS, label="roll back to", elem_id="registry-to"
        )
    reason = gr.Textbox(label="reason (kept in the alias history)", elem_id="registry-reason")
    force = gr.Checkbox(False, label="move it even where the gate refuses (recorded as forced)")
    with gr.Row():
        promote = gr.Button("Promote…", variant="primary", elem_id="registry-promote")
        rollback = gr.Button("Roll back…", elem_id="registry-rollback")
    with gr.Group(visible=False, elem_id="registry-confirm") as confirm:
        question = gr.Markdown(elem_id="registry-question")
        with gr.Row():
            yes = gr.Button("Confirm", variant="stop", elem_id="registry-yes")
            no = gr.Button("Cancel", elem_id="registry-no")
    outcome = gr.Markdown(elem_id="registry-outcome")
    history = gr.Dataframe(
        headers=HISTORY,
        label="alias history",
        interactive=False,
        wrap=True,
        elem_id="registry-history",
    )
    pending = gr.State(None)

    async def show(name: str) -> tuple[Any, ...]:
        info = await client.get(f"/v1/registry/{name}")
        numbers = [v["version"] for v in info["versions"]]
        return (
            _summary(info),
            _versions(info),
            [
                [e["time"], e["alias"], e["from"] or "-", e["to"], e["by"], e["reason"]]
                for e in reversed(info["history"])
            ],
            gr.update(choices=numbers, value=None),
            gr.update(choices=[PREVIOUS, *numbers], value=PREVIOUS),
        )

    shown = [summary, versions, history, version, target]

    def ask_promote(name: str, number: str | None, why: str, forced: bool) -> tuple[Any, ...]:
        if not number:
            raise fail("version to promote: pick one")
        if not why.strip():
            raise fail("reason: say why the champion changes (it is kept in the history)")
        plan = {
            "action": "promote",
            "task": name,
            "version": number,
            "reason": why,
            "force": forced,
        }
        text = f"Make **v{number}** the champion of **{name}**? The served model follows."
        return plan, text, gr.update(visible=True)

    def ask_rollback(name: str, to: str | None, why: str, forced: bool) -> tuple[Any, ...]:
        if not why.strip():
            raise fail("reason: say why the champion changes (it is kept in the history)")
        number = None if to in (None, PREVIOUS) else to
        plan = {"action": "rollback", "task": name, "to": number, "reason": why, "force": forced}
        where = f"v{number}" if number else PREVIOUS
        text = f"Roll **{name}** back to **{where}**? The served model follows."
        return plan, text, gr.update(visible=True)

    async def confirmed(plan: dict | None, request: gr.Request) -> tuple[Any, ...]:
        if not plan:
            raise fail("nothing to confirm")
        who = f"{request.username} (web page)" if request.username else "web page"
        name = plan["task"]
        if plan["action"] == "promote":
            body = {k: plan[k] for k in ("version", "reason", "force")}
        else:
            body = {k: plan[k] for k in ("to", "reason", "force")}
        moved = await client.post(f"/admin/registry/{name}/{plan['action']}", {**body, "by": who})
        served = moved["served_version"]
        lines = [f"- {e}" for e in moved["events"]]
        lines.append(f"- served now: v{served}" if served else f"- reload: {moved['reload']}")
        cleared = ("", False)  # a reason is given once, for one move
        return (None, gr.update(visible=False), "\n".join(lines), *cleared, *await show(name))

    def cancel() -> tuple[Any, ...]:
        return None, gr.update(visible=False), "Nothing changed."

    task.change(show, task, shown, api_visibility="private")
    refresh.click(show, task, shown, api_visibility="private")
    promote.click(
        ask_promote,
        [task, version, reason, force],
        [pending, question, confirm],
        api_visibility="private",
    )
    rollback.click(
        ask_rollback,
        [task, target, reason, force],
        [pending, question, confirm],
        api_visibility="private",
    )
    yes.click(
        confirmed,
        pending,
        [pending, confirm, outcome, reason, force, *shown],
        api_visibility="private",
    )
    no.click(cancel, None, [pending, confirm, outcome], api_visibility="private")
    page.load(show, task, shown)


def _summary(info: dict[str, Any]) -> str:
    bound = "<=" if info["direction"] == "minimize" else ">="
    threshold = (
        f", threshold {bound} {info['threshold']:g}" if info["threshold"] is not None else ""
    )
    served = f"v{info['served_version']}" if info["served_version"] else "nothing yet"
    return (
        f"**{info['task']}**: the gate compares **valid {info['metric']}** ({info['direction']}"
        f"{threshold}); test is reported, never used to choose. Served now: **{served}**."
    )


def _versions(info: dict[str, Any]) -> Any:
    import pandas as pd

    metric, ui = info["metric"], info["mlflow_ui"]
    rows = []
    for v in info["versions"]:
        run = v["run_id"][:8]
        if ui and v["experiment_id"]:
            run = f"[{run}]({ui.rstrip('/')}/#/experiments/{v['experiment_id']}/runs/{v['run_id']})"
        lineage = v["lineage"]
        rows.append(
            {
                "version": v["version"],
                "model": v["model"],
                f"valid {metric}": _num(v["valid"]),
                f"test {metric}": _num(v["test"]),
                "aliases": ", ".join(v["aliases"]),
                "status": v["status"],
                "run": run,
                "git commit": lineage.get("git_commit", "")[:8],
                "data md5": lineage.get("data_md5", "")[:10],
                "model md5": lineage.get("model_md5", "")[:10],
                "experiment": lineage.get("dvc_exp", ""),
            }
        )
    frame = pd.DataFrame(rows)
    datatype = ["markdown" if c == "run" else "str" for c in frame.columns]
    return gr.update(value=frame, datatype=datatype)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
