"""nsmc-sentiment: a Korean movie review in, the label, its confidence and both class
probabilities out, whichever model family is champion."""

from __future__ import annotations

from typing import Any

import gradio as gr

from reprolab.serve.ui.client import ApiClient, fail
from reprolab.serve.ui.common import loader, served_line

# real reviews from the NSMC test split (label in the comment)
EXAMPLES = [
    "간만에 참 유쾌하게 웃은듯...",  # positive
    "음악 쌤이 보여줬는데 진짜 짱인 영화",  # positive
    "밋밋하다고밖에 할말이 없다",  # negative
    "저 예산 영화라서 이따위인가...어이없다",  # negative
]


def build(client: ApiClient, task: str, params: Any, page: gr.Blocks) -> None:
    served = gr.Markdown(elem_id=f"{task}-served")
    text = gr.Textbox(
        label="review (Korean)",
        lines=3,
        max_length=5000,
        placeholder="영화 리뷰를 입력하세요",
        elem_id=f"{task}-text",
    )
    gr.Examples(EXAMPLES, inputs=text, label="reviews from the test split")
    go = gr.Button("Classify", variant="primary", elem_id=f"{task}-go")
    verdict = gr.Textbox(label="label", interactive=False, elem_id=f"{task}-label")
    probs = gr.Label(label="probability", num_top_classes=2, elem_id=f"{task}-probs")

    async def classify(review: str) -> tuple[str, dict[str, float], str]:
        if not review or not review.strip():
            raise fail("review: type a review first")
        answer = await client.post(
            f"/v1/tasks/{task}/predict", {"texts": [review], "return_probs": True}
        )
        p = answer["predictions"][0]
        line = f"{p['label']} (confidence {p['confidence']:.2f})"
        return (
            line,
            p.get("probs") or {p["label"]: p["confidence"]},
            await served_line(client, task),
        )

    go.click(classify, text, [verdict, probs, served], api_visibility="private")
    text.submit(classify, text, [verdict, probs, served], api_visibility="private")
    page.load(loader(client, task), None, served)
