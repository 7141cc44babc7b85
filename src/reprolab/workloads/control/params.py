"""Params of the control workload: PIDNet: PID gains for simulated plants. Each kind is declared
here once (its `kind` Literal, and `impl`: the module:class in this package that implements it)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from reprolab.core.params import DatasetBase, Footprint, ModelBase, PosInt, Width, mlp_parameters
from reprolab.core.train.setup import Device

# a list in params.yaml, a tuple in code: the pair itself is not strict, its numbers are
Range = Annotated[tuple[float, float], Field(strict=False)]
N_FEATURES = 5  # step-test features in (reprolab.workloads.control.tuning.FEATURES)
N_GAINS = 3  # Kp, Ki, Kd out


# what this workload's evaluate stage writes per split: the choices of registry.<task>.metric
METRICS = ("iae", "ise", "overshoot", "settling_time", "effort", "iae_vs_zn", "iae_vs_simc")


class ControlDataset(DatasetBase):
    """Simulated plants for PID tuning: a mix of first order plus dead time (fopdt), second
    order under-damped with dead time (sopdt) and integrating (integrator + lag) plants,
    drawn from the ranges below by seed and split into train/valid/test plants."""

    kind: Literal["control"]
    n_plants: Annotated[int, Field(ge=10, le=100_000)] = 200
    mix: dict[Literal["fopdt", "sopdt", "integrating"], Annotated[float, Field(ge=0)]] = {
        "fopdt": 0.4,
        "sopdt": 0.3,
        "integrating": 0.3,
    }
    gain: Range = (0.5, 3.0)
    time_constant: Range = (1.0, 6.0)
    delay: Range = (0.2, 2.0)
    damping: Range = (0.3, 0.8)
    natural_frequency: Range = (0.4, 1.5)
    noise_std: Annotated[float, Field(ge=0)] = 0.01
    disturbance: float = 0.5  # load step added to the plant input ...
    disturbance_time: Annotated[float, Field(gt=0)] = 30.0  # ... at this time (s)
    dt: Annotated[float, Field(gt=0)] = 0.2
    horizon: Annotated[float, Field(gt=0)] = 60.0
    u_limit: Annotated[float, Field(gt=0)] = 10.0  # actuator saturation at ±u_limit
    valid_size: Annotated[float, Field(gt=0, lt=0.5)] = 0.15
    test_size: Annotated[float, Field(gt=0, lt=0.5)] = 0.25

    @model_validator(mode="after")
    def _sane(self) -> ControlDataset:
        problems = []
        for key in ("gain", "time_constant", "delay", "damping", "natural_frequency"):
            low, high = getattr(self, key)
            if low <= 0:
                problems.append(f"{key}: must be > 0, got {low}")
            if low > high:
                problems.append(f"{key}: low {low} > high {high}")
        if self.damping[1] >= 1:
            problems.append(f"damping: must be < 1 (under-damped), got {self.damping[1]}")
        if self.delay[1] >= self.disturbance_time:
            problems.append(
                f"delay: {self.delay[1]} is not shorter than the setpoint phase "
                f"(disturbance_time {self.disturbance_time})"
            )
        if self.disturbance_time >= self.horizon:
            problems.append(
                f"disturbance_time: {self.disturbance_time} must be < horizon {self.horizon}"
            )
        if self.horizon / self.dt > 5000:
            problems.append(f"horizon: {self.horizon / self.dt:.0f} steps, at most 5000")
        if not sum(self.mix.values()) > 0:
            problems.append("mix: at least one plant type needs a positive weight")
        if problems:
            raise ValueError("\n".join(problems))
        return self


class PIDNetParams(ModelBase):
    """A small network: step-test features -> PID gains, trained through the simulation."""

    kind: Literal["pidnet"]
    impl: ClassVar[str] = "pidnet:PIDNet"
    hidden: list[Width] = Field(default=[32, 32], min_length=1, max_length=16)
    lr: Annotated[float, Field(gt=0, le=1)] = 0.01
    epochs: PosInt = 150
    batch_size: PosInt = 32
    overshoot_weight: Annotated[float, Field(ge=0)] = 2.0
    effort_weight: Annotated[float, Field(ge=0)] = 0.002
    setpoint_weight: bool = False  # also predict a setpoint weight b in (0, 1) on Kp
    patience: PosInt = 40
    device: Device = "auto"  # auto: CUDA when usable
    deterministic: bool = True  # deterministic kernels, fixed threads, seeded RNGs
    threads: PosInt | None = None  # torch threads; None: 2 when deterministic

    def footprint(self, dataset: Any, base: Any) -> Footprint:
        # float64; the simulation unrolls every step of the horizon through the gains, but
        # the network itself runs once per plant: its activations are the Linear + Tanh pairs
        return Footprint(
            mlp_parameters(N_FEATURES, self.hidden, N_GAINS),
            self.batch_size * sum(self.hidden) * 2 * 8,
            f"hidden {self.hidden}",
        )


DATASETS = (ControlDataset,)
MODELS = (PIDNetParams,)
