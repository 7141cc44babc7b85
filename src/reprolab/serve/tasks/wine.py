"""wine-quality: rows of the 11 physicochemical inputs and `is_red` → quality grades."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field, create_model

from reprolab.serve.forest import FlatForest
from reprolab.serve.tasks import MAX_ITEMS, Served, Strict, load_pyfunc, unchecked
from reprolab.workloads.wine.data import FEATURES

UPPER = {"pH": 14.0, "is_red": 1.0, "density": 2.0}


def _field(name: str) -> Any:
    bound = Field(ge=0, le=UPPER.get(name, 1e6), allow_inf_nan=False, alias=name)
    return Annotated[float, bound], ...


FIELDS = [name.replace(" ", "_") for name in FEATURES]  # python names, in model order
WineRow = create_model(
    "WineRow",
    __config__=ConfigDict(extra="forbid", populate_by_name=True, strict=True),
    **{field: _field(name) for field, name in zip(FIELDS, FEATURES, strict=True)},
)
WineRow.__doc__ = "One wine: the UCI inputs by their dataset names; is_red is 1 (red) or 0."


class WineRequest(Strict):
    rows: list[WineRow] = Field(min_length=1, max_length=MAX_ITEMS)  # type: ignore[valid-type]


class WineResponse(Served):
    grades: list[float] = Field(description="predicted quality, one per row (3-9 scale)")


class WineAdapter:
    Request = WineRequest
    Response = WineResponse
    inline = True  # under a millisecond a request for the MLP, the forest or the boosted trees

    def load(self, uri: str) -> Any:
        """The pyfunc's unchecked predict; a forest's replaced by its flattened walk, which
        gives the same numbers (serve.forest)."""
        model = unchecked(load_pyfunc(uri))
        impl = getattr(getattr(model, "pyfunc", None), "_model_impl", None)
        flat = FlatForest.of(getattr(impl, "sklearn_model", None))
        if flat is not None:
            model.predict = flat.predict
        return model

    def to_frame(self, request: WineRequest) -> pd.DataFrame:
        values = np.array([[getattr(row, f) for f in FIELDS] for row in request.rows], dtype=float)
        return pd.DataFrame(values, columns=FEATURES)

    def run(self, model: Any, frame: pd.DataFrame) -> Sequence[float]:
        out = model.predict(frame)
        values = out.iloc[:, 0] if isinstance(out, pd.DataFrame) else out
        return np.asarray(values, dtype=float).ravel().tolist()

    def respond(self, request: WineRequest, outputs: Sequence[float]) -> dict[str, Any]:
        return {"grades": [float(v) for v in outputs]}

    def predict(self, model: Any, request: WineRequest) -> dict[str, Any]:
        return self.respond(request, self.run(model, self.to_frame(request)))


def adapter(task: str, params: Any, settings: Any) -> WineAdapter:
    return WineAdapter()
