"""wine-quality: the eleven inputs and the colour, defaulting to the data's medians, and the
predicted grade."""

from __future__ import annotations

from typing import Any

import gradio as gr

from reprolab.serve.ui.client import ApiClient, fail
from reprolab.serve.ui.common import loader, served_line
from reprolab.workloads.wine.data import INPUTS

# medians of the 6,497 wines of the UCI wine quality data (red and white together);
# tests/serve/ui/test_tabs.py checks them against the data where the mirror is present
MEDIANS = {
    "fixed acidity": 7.0,
    "volatile acidity": 0.29,
    "citric acid": 0.31,
    "residual sugar": 3.0,
    "chlorides": 0.047,
    "free sulfur dioxide": 29.0,
    "total sulfur dioxide": 118.0,
    "density": 0.99489,
    "pH": 3.21,
    "sulphates": 0.51,
    "alcohol": 10.3,
}
UNITS = {
    "fixed acidity": "g/L tartaric acid",
    "volatile acidity": "g/L acetic acid",
    "citric acid": "g/L",
    "residual sugar": "g/L",
    "chlorides": "g/L sodium chloride",
    "free sulfur dioxide": "mg/L",
    "total sulfur dioxide": "mg/L",
    "density": "g/cm³",
    "pH": "",
    "sulphates": "g/L potassium sulphate",
    "alcohol": "% vol",
}
COLOURS = ["white", "red"]
PER_ROW = 3


def _number(task: str, name: str) -> gr.Number:
    label = f"{name} ({UNITS[name]})" if UNITS[name] else name
    return gr.Number(
        MEDIANS[name], label=label, minimum=0, elem_id=f"{task}-{name.replace(' ', '-')}"
    )


def build(client: ApiClient, task: str, params: Any, page: gr.Blocks) -> None:
    served = gr.Markdown(elem_id=f"{task}-served")
    inputs = []
    with gr.Row():
        with gr.Column(scale=3):
            for start in range(0, len(INPUTS), PER_ROW):
                with gr.Row():
                    inputs += [_number(task, name) for name in INPUTS[start : start + PER_ROW]]
        with gr.Column(scale=1):
            colour = gr.Radio(COLOURS, value="white", label="colour", elem_id=f"{task}-colour")
            go = gr.Button("Predict grade", variant="primary", elem_id=f"{task}-go")
            grade = gr.Textbox(
                label="predicted quality (3-9)", interactive=False, elem_id=f"{task}-grade"
            )

    async def predict(*values: Any) -> tuple[str, str]:
        *numbers, red = values
        row = {}
        for name, value in zip(INPUTS, numbers, strict=True):
            if value is None:
                raise fail(f"{name}: a number is needed")
            row[name] = float(value)
        row["is_red"] = 1.0 if red == "red" else 0.0
        answer = await client.post(f"/v1/tasks/{task}/predict", {"rows": [row]})
        return f"{answer['grades'][0]:.2f}", await served_line(client, task)

    go.click(predict, [*inputs, colour], [grade, served], api_visibility="private")
    page.load(loader(client, task), None, served)
