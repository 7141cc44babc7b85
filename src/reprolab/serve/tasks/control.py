"""pid-control: plants (kind, gain, dead time, ...) → PID gains from the champion and the
closed loop they give, simulated as the evaluate stage does (IAE, overshoot)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field, model_validator

from reprolab.serve.errors import ApiError
from reprolab.serve.tasks import MAX_ITEMS, Served, Strict, load_pyfunc

# the simulation runs in float32: values between 1e-4 and 1e4 keep every loop finite
# (smaller gains or time constants underflow to zero and the baseline tuners divide by them)
SMALLEST = 1e-4
Positive = Annotated[float, Field(ge=SMALLEST, le=1e4, allow_inf_nan=False)]


class PlantIn(Strict):
    """What every plant kind takes; the kinds below differ only where their checks do."""

    gain: Positive = Field(description="process gain (> 0: reverse-acting plants unsupported)")
    delay: Annotated[float, Field(ge=0, le=1e4, allow_inf_nan=False)] = Field(
        description="dead time (s), shorter than the simulated setpoint phase"
    )
    time_constant: Positive = 1.0
    damping: Positive = 0.5
    natural_frequency: Positive = 1.0


class Fopdt(PlantIn):
    kind: Literal["fopdt"]


class Integrating(PlantIn):
    kind: Literal["integrating"]


class Sopdt(PlantIn):
    kind: Literal["sopdt"]
    damping: Annotated[float, Field(ge=SMALLEST, lt=1, allow_inf_nan=False)] = 0.5


def plant_type(longest_delay: float) -> Any:
    """A plant of any kind, its dead time bounded by the loop the server simulates, so the
    schema states every check the server makes (a discriminated union on `kind`)."""
    from pydantic import create_model

    delay = (
        Annotated[float, Field(ge=0, lt=longest_delay, allow_inf_nan=False)],
        Field(description=f"dead time (s), under {longest_delay:g} s: the setpoint phase"),
    )
    kinds = [create_model(k.__name__, __base__=k, delay=delay) for k in (Fopdt, Integrating, Sopdt)]
    return Annotated[kinds[0] | kinds[1] | kinds[2], Field(discriminator="kind")]


MAX_TRAJECTORIES = 16  # plants whose step responses one request may ask for
TRAJECTORY_POINTS = 300  # samples per returned step response
DIVERGED = 1e6  # |y| past this is shown as a gap (setpoint 1)


class ControlRequest(Strict):
    # JSON Schema's form of `_few_trajectories`, so the schema states it too
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"trajectory": {"const": True}}, "required": ["trajectory"]},
            "then": {"properties": {"plants": {"maxItems": MAX_TRAJECTORIES}}},
        }
    )
    plants: list[Annotated[Fopdt | Integrating | Sopdt, Field(discriminator="kind")]] = Field(
        min_length=1, max_length=MAX_ITEMS
    )
    compare: bool = Field(False, description="also simulate Ziegler–Nichols and SIMC gains")
    trajectory: bool = Field(
        False, description=f"also return the step responses (at most {MAX_TRAJECTORIES} plants)"
    )

    @model_validator(mode="after")
    def _few_trajectories(self) -> ControlRequest:
        if self.trajectory and len(self.plants) > MAX_TRAJECTORIES:
            raise ValueError(
                f"trajectory: at most {MAX_TRAJECTORIES} plants per request, got {len(self.plants)}"
            )
        return self


def request_type(longest_delay: float) -> type[ControlRequest]:
    """ControlRequest with the dead time bounded by the served loop."""
    from pydantic import create_model

    plants = Field(min_length=1, max_length=MAX_ITEMS)
    model = create_model(
        "ControlRequest",
        __base__=ControlRequest,
        plants=(list[plant_type(longest_delay)], plants),  # type: ignore[valid-type]
    )
    return model


class LoopResult(Strict):
    # None where a tuner's formula has no finite answer (Ziegler–Nichols at zero dead time)
    kp: float | None
    ki: float | None
    kd: float | None
    b: float | None = Field(
        1.0, description="setpoint weight on Kp, u = Kp (b r - y) + I + D; 1 for the classic rules"
    )
    iae: float | None = Field(description="integral of |error| over the simulated loop")
    overshoot: float | None = Field(description="percent")
    diverged: bool


class StepResponse(Strict):
    t: list[float] = Field(description="seconds; setpoint step at 0, load disturbance later")
    y: dict[str, list[float | None]] = Field(
        description="plant output under each tuner's gains; null where the loop diverged"
    )


class Tuned(LoopResult):
    baselines: dict[str, LoopResult] | None = Field(None, description="when compare is set")
    response: StepResponse | None = Field(None, description="when trajectory is set")


class ControlResponse(Served):
    results: list[Tuned]


class ControlAdapter:
    Request = ControlRequest
    Response = ControlResponse

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.Request = request_type(min(loop.disturbance_time, loop.horizon))

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
        from reprolab.workloads.control.data import features_of, weighted

        plants = _plants(frame)
        return self._simulate(plants, weighted(model.predict(features_of(plants, self.loop))))[0]

    def respond(self, request: ControlRequest, outputs: Sequence[dict]) -> dict[str, Any]:
        results = [dict(o) for o in outputs]
        if request.compare or request.trajectory:
            self._detail(request, results)
        return {"results": results}

    def predict(self, model: Any, request: ControlRequest) -> dict[str, Any]:
        return self.respond(request, self.run(model, self.to_frame(request)))

    def _simulate(self, plants: list, gains: np.ndarray) -> tuple[list[dict], Any]:
        """Each plant's closed loop under its row of `gains`, as the evaluate stage runs it."""
        import torch

        from reprolab.workloads.control import metrics, simulate
        from reprolab.workloads.control.data import WEIGHTED

        with torch.no_grad():
            traj = simulate.closed_loop(simulate.batch(plants, self.loop), torch.tensor(gains))
        per = metrics.per_plant(traj, self.loop.dt, self.loop.disturbance_step)
        out = []
        for i, diverged in enumerate(simulate.diverged(traj).tolist()):
            iae, over = float(per["iae"][i]), float(per["overshoot"][i])
            ok = not diverged and np.isfinite(iae) and np.isfinite(over)
            out.append(
                {
                    **{
                        g: float(v) if np.isfinite(v) else None
                        for g, v in zip(WEIGHTED, gains[i], strict=True)
                    },
                    "iae": iae if ok else None,
                    "overshoot": over if ok else None,
                    "diverged": not ok or not np.isfinite(gains[i]).all(),
                }
            )
        return out, traj

    def _detail(self, request: ControlRequest, results: list[dict]) -> None:
        """Baseline tuners' loops and the step responses, added to `results` in place."""
        from reprolab.workloads.control import tuning
        from reprolab.workloads.control.data import WEIGHTED, features_of, weighted

        plants = _plants(self.to_frame(request))
        tuners = {"pidnet": np.array([[r[g] for g in WEIGHTED] for r in results], dtype=float)}
        if request.compare:
            feats = features_of(plants, self.loop)
            tuners["ziegler_nichols"] = weighted(tuning.ziegler_nichols(feats))
            tuners["simc"] = weighted(tuning.simc(feats))
        names = list(tuners)
        n = len(plants)
        loops, traj = self._simulate(plants * len(names), np.concatenate(list(tuners.values())))
        stride = max(1, int(np.ceil(traj.t.numel() / TRAJECTORY_POINTS)))
        t = traj.t[::stride].tolist()
        for i, result in enumerate(results):
            if request.compare:
                result["baselines"] = {
                    name: loops[k * n + i] for k, name in enumerate(names) if name != "pidnet"
                }
            if request.trajectory:
                y = {name: _finite(traj.y[k * n + i, ::stride]) for k, name in enumerate(names)}
                result["response"] = {"t": t, "y": y}


def _finite(values: Any) -> list[float | None]:
    return [v if np.isfinite(v) and abs(v) < DIVERGED else None for v in values.tolist()]


def _plants(frame: pd.DataFrame) -> list:
    from reprolab.workloads.control.plants import Plant

    return [Plant(**row) for row in frame.to_dict(orient="records")]


def adapter(task: str, params: Any, settings: Any) -> ControlAdapter:
    from reprolab.workloads.control.data import loop_of
    from reprolab.workloads.control.params import ControlDataset

    names = sorted({params.model(m).dataset for m in params.models_of_task(task)})
    controls = [params.datasets[d] for d in names if params.datasets[d].kind == "control"]
    return ControlAdapter(loop_of(controls[0] if controls else ControlDataset(kind="control")))
