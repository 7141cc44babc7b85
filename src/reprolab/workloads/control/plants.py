"""Linear plants with dead time, written as two-state models so one batched simulator runs
them all: first order plus dead time (fopdt), second order under-damped (sopdt) and an
integrator with a lag (integrating). Discretised exactly (zero-order hold) at the loop's dt."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from reprolab.core.errors import DataError

KINDS = ("fopdt", "sopdt", "integrating")


@dataclass(frozen=True)
class Plant:
    kind: str
    gain: float
    delay: float
    time_constant: float = 1.0  # fopdt / integrating lag
    damping: float = 0.5  # sopdt
    natural_frequency: float = 1.0  # sopdt
    seed: int = 0  # measurement-noise realisation

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Loop:
    """Simulation settings shared by every plant of a split."""

    dt: float = 0.2
    horizon: float = 60.0
    noise_std: float = 0.01
    disturbance: float = 0.5
    disturbance_time: float = 30.0
    u_limit: float = 10.0

    @property
    def steps(self) -> int:
        return round(self.horizon / self.dt)

    @property
    def disturbance_step(self) -> int:
        return round(self.disturbance_time / self.dt)


def check(plant: Plant, loop: Loop, where: str = "plant") -> Plant:
    """Reject nonsensical or unsupported plants with one clear message."""
    problems = []
    if plant.kind not in KINDS:
        problems.append(f"kind: must be one of {list(KINDS)}, got {plant.kind!r}")
    values = {
        "gain": plant.gain,
        "delay": plant.delay,
        "time_constant": plant.time_constant,
        "damping": plant.damping,
        "natural_frequency": plant.natural_frequency,
    }
    for key, value in values.items():
        if not isinstance(value, int | float) or not math.isfinite(value):
            problems.append(f"{key}: must be a finite number, got {value!r}")
    if problems:
        raise DataError("; ".join(f"{where}.{p}" for p in problems))
    if plant.gain <= 0:
        problems.append(f"gain: must be > 0 (reverse-acting plants unsupported), got {plant.gain}")
    if plant.time_constant <= 0:
        problems.append(f"time_constant: must be > 0, got {plant.time_constant}")
    if plant.delay < 0:
        problems.append(f"delay: must be >= 0, got {plant.delay}")
    elif plant.delay >= loop.disturbance_time or plant.delay >= loop.horizon:
        problems.append(
            f"delay: {plant.delay}s is longer than the setpoint phase "
            f"({loop.disturbance_time}s of a {loop.horizon}s horizon): nothing to control"
        )
    if plant.kind == "sopdt":
        if not 0 < plant.damping < 1:
            problems.append(f"damping: must be in (0, 1) for sopdt, got {plant.damping}")
        if plant.natural_frequency <= 0:
            problems.append(f"natural_frequency: must be > 0, got {plant.natural_frequency}")
    if problems:
        raise DataError("; ".join(f"{where}.{p}" for p in problems))
    return plant


def continuous(plant: Plant) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) of x' = A x + B u with y = x[0]."""
    k, t = plant.gain, plant.time_constant
    if plant.kind == "fopdt":
        return np.array([[-1 / t, 0.0], [0.0, -1.0]]), np.array([k / t, 0.0])
    if plant.kind == "sopdt":
        w, z = plant.natural_frequency, plant.damping
        return np.array([[0.0, 1.0], [-(w**2), -2 * z * w]]), np.array([0.0, k * w**2])
    return np.array([[0.0, 1.0], [0.0, -1 / t]]), np.array([0.0, k / t])


def discrete(plant: Plant, dt: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Zero-order-hold (Ad, Bd) and the delay in whole steps."""
    a, b = continuous(plant)
    block = [[*a[0], b[0]], [*a[1], b[1]], [0.0, 0.0, 0.0]]
    m = np.array(expm3([[v * dt for v in row] for row in block]))
    return m[:2, :2], m[:2, 2], round(plant.delay / dt)


def expm3(m: list[list[float]]) -> list[list[float]]:
    """exp(m) of a 3x3 matrix in plain Python floats: scaling and squaring of a Taylor
    series, summed in a fixed order. scipy's expm multiplies through BLAS, whose kernels
    round differently on AVX2 and AVX-512, and every plant downstream inherited that."""
    norm = max(sum(abs(v) for v in row) for row in m)
    squarings = max(0, math.ceil(math.log2(norm / 0.25))) if norm > 0.25 else 0
    scaled = [[v / 2**squarings for v in row] for row in m]
    total = [[float(i == j) for j in range(3)] for i in range(3)]
    term = [row[:] for row in total]
    for k in range(1, 19):  # ||m|| <= 1/4: the 18th term is below 1e-24
        term = [[v / k for v in row] for row in _matmul3(term, scaled)]
        total = [
            [t + v for t, v in zip(trow, vrow, strict=True)]
            for trow, vrow in zip(total, term, strict=True)
        ]
    for _ in range(squarings):
        total = _matmul3(total, total)
    return total


def _matmul3(p: list[list[float]], q: list[list[float]]) -> list[list[float]]:
    return [
        [p[i][0] * q[0][j] + p[i][1] * q[1][j] + p[i][2] * q[2][j] for j in range(3)]
        for i in range(3)
    ]


def sample(cfg, rng: np.random.Generator) -> list[Plant]:
    """`cfg.n_plants` plants drawn from the ranges of a params.ControlDataset."""
    kinds = [k for k in KINDS if cfg.mix.get(k, 0) > 0]
    weights = np.array([cfg.mix[k] for k in kinds], dtype=float)
    chosen = rng.choice(kinds, size=cfg.n_plants, p=weights / weights.sum())
    plants = []
    for i, kind in enumerate(chosen):
        plants.append(
            Plant(
                kind=str(kind),
                gain=float(rng.uniform(*cfg.gain)),
                delay=float(rng.uniform(*cfg.delay)),
                time_constant=float(rng.uniform(*cfg.time_constant)),
                damping=float(rng.uniform(*cfg.damping)),
                natural_frequency=float(rng.uniform(*cfg.natural_frequency)),
                seed=int(rng.integers(2**31)) + i,
            )
        )
    return plants
