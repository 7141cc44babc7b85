"""pid-control: a plant's parameters in; the champion's PID gains, and the step responses
under them and under Ziegler–Nichols (and SIMC), with each loop's IAE."""

from __future__ import annotations

from typing import Any

import gradio as gr

from reprolab.serve.ui.client import ApiClient
from reprolab.serve.ui.common import loader, served_line

KINDS = ["fopdt", "sopdt", "integrating"]
NAMES = {"pidnet": "PIDNet (served)", "ziegler_nichols": "Ziegler–Nichols", "simc": "SIMC (PI)"}
COLUMNS = ["tuner", "Kp", "Ki", "Kd", "b", "IAE", "overshoot %"]


def build(client: ApiClient, task: str, params: Any, page: gr.Blocks) -> None:
    served = gr.Markdown(elem_id=f"{task}-served")
    with gr.Row():
        kind = gr.Radio(KINDS, value="fopdt", label="plant kind", elem_id=f"{task}-kind")
        gain = gr.Number(1.5, label="gain", elem_id=f"{task}-gain")
        delay = gr.Number(0.8, label="dead time (s)", minimum=0, elem_id=f"{task}-delay")
    with gr.Row():
        tau = gr.Number(3.0, label="time constant (s)", minimum=0, elem_id=f"{task}-tau")
        damping = gr.Number(0.5, label="damping (sopdt)", minimum=0, elem_id=f"{task}-damping")
        omega = gr.Number(
            1.0, label="natural frequency (sopdt, rad/s)", minimum=0, elem_id=f"{task}-omega"
        )
    go = gr.Button("Tune", variant="primary", elem_id=f"{task}-go")
    table = gr.Dataframe(
        headers=COLUMNS, label="gains and loop quality", interactive=False, elem_id=f"{task}-table"
    )
    plot = gr.Plot(label="step responses", elem_id=f"{task}-plot")

    async def tune(*values: Any) -> tuple[list[list[Any]], Any, str]:
        plant = dict(
            zip(
                ("kind", "gain", "delay", "time_constant", "damping", "natural_frequency"),
                values,
                strict=True,
            )
        )
        answer = await client.post(
            f"/v1/tasks/{task}/predict",
            {"plants": [plant], "compare": True, "trajectory": True},
        )
        result = answer["results"][0]
        loops = {"pidnet": result, **(result.get("baselines") or {})}
        rows = [
            [
                NAMES.get(name, name),
                *("-" if r[g] is None else round(r[g], 3) for g in ("kp", "ki", "kd", "b")),
                "diverged" if r["diverged"] else round(r["iae"], 2),
                "-" if r["diverged"] else round(r["overshoot"], 1),
            ]
            for name, r in loops.items()
        ]
        return rows, figure(result["response"], plant), await served_line(client, task)

    go.click(
        tune,
        [kind, gain, delay, tau, damping, omega],
        [table, plot, served],
        api_visibility="private",
    )
    page.load(loader(client, task), None, served)


def figure(response: dict[str, Any], plant: dict[str, Any]) -> Any:
    from reprolab.core.figures import plt

    fig, ax = plt.subplots(figsize=(7, 3.4))
    for name, y in response["y"].items():
        ys = [float("nan") if v is None else v for v in y]
        ax.plot(response["t"], ys, lw=1.6 if name == "pidnet" else 1.1, label=NAMES.get(name, name))
    ax.axhline(1.0, c="k", lw=0.6, ls="--")
    ax.set_xlabel("t (s)")
    ax.set_ylabel("plant output")
    ax.set_title(f"{plant['kind']}: gain {plant['gain']:g}, dead time {plant['delay']:g} s")
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig
