"""pid-control: plants (kind, gain, dead time, ...) → PID gains from the champion and the
closed loop they give, simulated as the evaluate stage does (IAE, overshoot)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from reprolab.serve.errors import ApiError
from reprolab.serve.tasks import MAX_ITEMS, Served, Strict, load_pyfunc

Positive = Annotated[float, Field(gt=0, le=1e4, allow_inf_nan=False)]


class PlantIn(Strict):
    kind: Literal["fopdt", "sopdt", "integrating"]
    gain: Annotated[float, Field(allow_inf_nan=False, ge=-1e4, le=1e4)]
    delay: Annotated[float, Field(ge=0, le=1e4, allow_inf_nan=False)] = Field(
        description="dead time (s)"
    )
    time_constant: Positive = 1.0
    damping: Positive = 0.5
    natural_frequency: Positive = 1.0


class ControlRequest(Strict):
    plants: list[PlantIn] = Field(min_length=1, max_length=MAX_ITEMS)


class Tuned(Strict):
    kp: float
    ki: float
    kd: float
    iae: float | None = Field(description="integral of |error| over the simulated loop")
    overshoot: float | None = Field(description="percent")
    diverged: bool


class ControlResponse(Served):
    results: list[Tuned]


class ControlAdapter:
    Request = ControlRequest
    Response = ControlResponse

    def __init__(self, loop: Any) -> None:
        self.loop = loop

    def load(self, uri: str) -> Any:
        return load_pyfunc(uri)

    def to_frame(self, request: ControlRequest) -> pd.DataFrame:
        from reprolab.core.errors import DataError
        from reprolab.workloads.control.plants import Plant, check

        rows = []
        for i, item in enumerate(request.plants):
            plant = Plant(**item.model_dump())
            try:
                check(plant, self.loop, where=f"plants[{i}]")
            except DataError as err:
                raise ApiError(422, str(err).splitlines()[0], f"plants[{i}]") from err
            rows.append(plant.as_dict())
        return pd.DataFrame(rows)

    def run(self, model: Any, frame: pd.DataFrame) -> Sequence[dict]:
        import torch

        from reprolab.workloads.control import metrics, simulate
        from reprolab.workloads.control.data import GAINS, features_of
        from reprolab.workloads.control.plants import Plant

        plants = [Plant(**row) for row in frame.to_dict(orient="records")]
        gains = np.asarray(model.predict(features_of(plants, self.loop))[GAINS], dtype=float)
        with torch.no_grad():
            traj = simulate.closed_loop(simulate.batch(plants, self.loop), torch.tensor(gains))
        per = metrics.per_plant(traj, self.loop.dt, self.loop.disturbance_step)
        bad = simulate.diverged(traj).tolist()
        out = []
        for i, diverged in enumerate(bad):
            iae, over = float(per["iae"][i]), float(per["overshoot"][i])
            ok = not diverged and np.isfinite(iae) and np.isfinite(over)
            out.append(
                {
                    **dict(zip(GAINS, map(float, gains[i]), strict=True)),
                    "iae": iae if ok else None,
                    "overshoot": over if ok else None,
                    "diverged": not ok,
                }
            )
        return out

    def respond(self, request: ControlRequest, outputs: Sequence[dict]) -> dict[str, Any]:
        return {"results": list(outputs)}

    def predict(self, model: Any, request: ControlRequest) -> dict[str, Any]:
        return self.respond(request, self.run(model, self.to_frame(request)))


def adapter(task: str, params: Any, settings: Any) -> ControlAdapter:
    from reprolab.workloads.control.data import loop_of
    from reprolab.workloads.control.params import ControlDataset

    names = sorted({params.model(m).dataset for m in params.models_of_task(task)})
    controls = [params.datasets[d] for d in names if params.datasets[d].kind == "control"]
    return ControlAdapter(loop_of(controls[0] if controls else ControlDataset(kind="control")))
