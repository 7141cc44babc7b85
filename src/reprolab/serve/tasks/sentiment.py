"""nsmc-sentiment: texts → {text, label, confidence, probs}; whichever family is champion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import pandas as pd
from pydantic import Field

from reprolab.serve.tasks import MAX_ITEMS, Served, Strict, load_pyfunc

MAX_TEXT = 10_000  # characters; longer texts are cut to the dataset's max_length anyway


class SentimentRequest(Strict):
    texts: list[Annotated[str, Field(max_length=MAX_TEXT)]] = Field(
        min_length=1, max_length=MAX_ITEMS
    )
    return_probs: bool = True


class Sentiment(Strict):
    text: str
    label: str | None = Field(description="None for an empty text")
    confidence: float
    probs: dict[str, float] | None = None
    note: str | None = None


class SentimentResponse(Served):
    predictions: list[Sentiment]


class SentimentAdapter:
    Request = SentimentRequest
    Response = SentimentResponse

    def __init__(self, task: str, params_path: Any) -> None:
        self.task, self.params_path = task, params_path

    def load(self, uri: str) -> Any:
        from reprolab.workloads.sentiment.api import SentimentPredictor

        return SentimentPredictor(
            model=load_pyfunc(uri), task=self.task, params_path=self.params_path
        )

    def to_frame(self, request: SentimentRequest) -> pd.DataFrame:
        return pd.DataFrame({"text": request.texts})

    def run(self, model: Any, frame: pd.DataFrame) -> Sequence[dict]:
        return model.predict(list(frame["text"]), return_probs=True)

    def respond(self, request: SentimentRequest, outputs: Sequence[dict]) -> dict[str, Any]:
        if not request.return_probs:
            outputs = [{k: v for k, v in o.items() if k != "probs"} for o in outputs]
        return {"predictions": list(outputs)}

    def predict(self, model: Any, request: SentimentRequest) -> dict[str, Any]:
        return self.respond(request, self.run(model, self.to_frame(request)))


def adapter(task: str, params: Any, settings: Any) -> SentimentAdapter:
    return SentimentAdapter(task, settings.params_path)
