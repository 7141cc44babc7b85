"""nuclei-segmentation: a microscope image in (upload, or one of the examples), the
predicted mask drawn over it and the number of nuclei out."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import gradio as gr

from reprolab.serve.ui.client import ApiClient, fail
from reprolab.serve.ui.common import loader, served_line

EXAMPLES = 4
SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")


def example_folders(params: Any, task: str) -> list[Path]:
    """Where the task's dataset keeps its images when the service runs in the pipeline's
    folder (data/raw/<dataset>/images); none in a serving container. The page may serve
    files from these folders, and from nowhere else."""
    from reprolab.core.layout import raw_dir

    datasets = sorted({params.model(m).dataset for m in params.models_of_task(task)})
    return [(raw_dir(d) / "images").resolve() for d in datasets if (raw_dir(d) / "images").is_dir()]


def examples(params: Any, task: str) -> list[str]:
    found: list[str] = []
    for folder in example_folders(params, task):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)
        found += [str(p) for p in files[:EXAMPLES]]
    return found[:EXAMPLES]


def build(client: ApiClient, task: str, params: Any, page: gr.Blocks) -> None:
    from PIL import Image

    served = gr.Markdown(elem_id=f"{task}-served")
    with gr.Row():
        image = gr.Image(
            type="filepath",
            label="microscope image (PNG, TIFF or JPEG)",
            sources=["upload"],
            elem_id=f"{task}-image",
        )
        overlay = gr.Image(label="predicted nuclei", interactive=False, elem_id=f"{task}-overlay")
    shown = examples(params, task)
    if shown:
        gr.Examples(shown, inputs=image, label="images from the dataset")
    go = gr.Button("Segment", variant="primary", elem_id=f"{task}-go")
    count = gr.Textbox(label="nuclei", interactive=False, elem_id=f"{task}-count")

    async def segment(path: str | None) -> tuple[Any, str, str]:
        if not path:
            raise fail("image: upload an image or pick an example first")
        data = Path(path).read_bytes()
        answer = await client.post(
            f"/v1/tasks/{task}/predict/image",
            files={"image": (Path(path).name, data)},
            data={"overlay": "true"},
        )
        picture = Image.open(io.BytesIO(base64.b64decode(answer["overlay_png"])))
        line = (
            f"{answer['objects']} nuclei · {answer['foreground_fraction']:.1%} of "
            f"{answer['width']}x{answer['height']} pixels"
        )
        return picture, line, await served_line(client, task)

    go.click(segment, image, [overlay, count, served], api_visibility="private")
    page.load(loader(client, task), None, served)
