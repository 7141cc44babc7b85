"""Simulated plants for PID tuning (params.ControlDataset): draw plants by seed, validate
each, run the open-loop step test (with measurement noise) to get the identified features
every tuner sees, split into train/valid/test plants, write one JSON per split.

A split's `score(gains)` simulates the closed loop of every plant under the given gains
and, in the same evaluation, under the Ziegler–Nichols and SIMC gains from the same step
test: mean metrics, per-kind breakdowns, and the baselines side by side."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reprolab.core.errors import DataError, ReprolabError
from reprolab.core.io import atomic_write_json
from reprolab.core.split import Split
from reprolab.workloads.control import tuning
from reprolab.workloads.control.params import ControlDataset
from reprolab.workloads.control.plants import Loop, Plant, check, sample

PROBLEM = "control"  # how the report treats this dataset's predictions
SPLITS = ("train", "valid", "test")
GAINS = ["kp", "ki", "kd"]
SETPOINT_WEIGHT = "b"  # optional 4th column: setpoint weight on Kp (1 when absent)
WEIGHTED = [*GAINS, SETPOINT_WEIGHT]


def weighted(gains: Any) -> np.ndarray:
    """(n, 4) rows of (Kp, Ki, Kd, b) from a frame or array with or without b: b = 1 is the
    classic PID (Ziegler-Nichols, SIMC, a PIDNet trained without a setpoint weight)."""
    if isinstance(gains, pd.DataFrame):
        gains = gains[[c for c in WEIGHTED if c in gains.columns]]
    g = np.asarray(gains, dtype=float)
    if g.ndim == 2 and g.shape[1] == 3:
        g = np.concatenate([g, np.ones((len(g), 1))], axis=1)
    return g


class SimulationError(ReprolabError):
    """A closed loop diverged (or produced non-finite values): no metric is recorded."""


def loop_of(params: ControlDataset) -> Loop:
    return Loop(
        dt=params.dt,
        horizon=params.horizon,
        noise_std=params.noise_std,
        disturbance=params.disturbance,
        disturbance_time=params.disturbance_time,
        u_limit=params.u_limit,
    )


def features_of(plants: list[Plant], loop: Loop) -> pd.DataFrame:
    from reprolab.workloads.control import simulate

    t, y = simulate.open_loop_step(simulate.batch(plants, loop))
    return tuning.identify(t, y)


@dataclass
class ControlSplit(Split):
    """Plants of one split: X = identified step-test features, groups = plant kind."""

    plants: list[Plant]
    loop: Loop
    X: pd.DataFrame
    groups: np.ndarray = field(default_factory=lambda: np.array([]))

    @property
    def y(self) -> np.ndarray:
        """Ziegler–Nichols IAE per plant: the `actual` column of predictions.csv."""
        return self.simulate(tuning.ziegler_nichols(self.X))["iae"]

    def batch(self, noise: bool = True):
        from reprolab.workloads.control import simulate

        return simulate.batch(self.plants, self.loop, noise)

    def simulate(self, gains: Any) -> dict[str, np.ndarray]:
        """Per-plant metrics of the closed loop under `gains` (n, 3); diverged -> error."""
        import torch

        from reprolab.workloads.control import metrics, simulate

        g = torch.tensor(_gains(gains, len(self.plants)), dtype=torch.float64)
        with torch.no_grad():
            traj = simulate.closed_loop(self.batch(), g)
        bad = simulate.diverged(traj)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise SimulationError(
                f"closed loop diverged for {int(bad.sum())} plant(s), first: plant {i} "
                f"{self.plants[i].as_dict()} with gains {g[i].tolist()}"
            )
        per = metrics.per_plant(traj, self.loop.dt, self.loop.disturbance_step)
        return {k: v.numpy() for k, v in per.items()}

    def score(self, gains: Any) -> dict:
        ours = self.simulate(gains)
        result: dict[str, Any] = {k: float(np.mean(v)) for k, v in ours.items()}
        for kind in sorted(set(self.groups.tolist())):
            mask = self.groups == kind
            result[kind] = {k: float(np.mean(v[mask])) for k, v in ours.items()}
        for name, rule in tuning.BASELINES.items():
            base = self.simulate(rule(self.X))
            result[name] = {k: float(np.mean(v)) for k, v in base.items()}
            result[f"iae_vs_{name}"] = result["iae"] / result[name]["iae"] - 1.0
        return result

    def prediction_table(self, gains: Any) -> pd.DataFrame:
        """predictions.csv: per plant, its params, our gains and metrics, the baselines'."""
        g = _gains(gains, len(self.plants))
        ours = self.simulate(g)
        zn = self.simulate(tuning.ziegler_nichols(self.X))
        simc = self.simulate(tuning.simc(self.X))
        rows = pd.DataFrame([p.as_dict() for p in self.plants])
        for j, name in enumerate([*GAINS, SETPOINT_WEIGHT][: g.shape[1]]):
            rows[name] = g[:, j]
        for key in ours:
            rows[key] = ours[key]
            rows[f"zn_{key}"] = zn[key]
            rows[f"simc_{key}"] = simc[key]
        rows["actual"], rows["predicted"], rows["group"] = zn["iae"], ours["iae"], self.groups
        return rows


def _gains(gains: Any, n: int) -> np.ndarray:
    if isinstance(gains, pd.DataFrame):
        gains = gains[GAINS + [c for c in [SETPOINT_WEIGHT] if c in gains.columns]]
    g = np.asarray(gains, dtype=float)
    if g.ndim != 2 or g.shape[0] != n or g.shape[1] not in (3, 4):
        raise DataError(f"expected gains (Kp, Ki, Kd[, b]) of shape ({n}, 3|4), got {g.shape}")
    if not np.isfinite(g).all() or (g < 0).any():
        raise SimulationError("gains must be finite and >= 0")
    return g


def prepare(
    params: ControlDataset, seed: int, raw_dir: Path, out_dir: Path, mirror: Path | None
) -> dict:
    """Nothing to download: plants are drawn from `params` by `seed`."""
    loop = loop_of(params)
    rng = np.random.default_rng(seed)
    plants = [check(p, loop, f"plants[{i}]") for i, p in enumerate(sample(params, rng))]
    order = rng.permutation(len(plants))
    n_test = max(round(params.test_size * len(plants)), 1)
    n_valid = max(round(params.valid_size * len(plants)), 1)
    parts = {
        "test": order[:n_test],
        "valid": order[n_test : n_test + n_valid],
        "train": order[n_test + n_valid :],
    }
    raw_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(raw_dir / "plants.json", [p.as_dict() for p in plants])
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, idx in parts.items():
        chosen = [plants[i] for i in idx]
        feats = features_of(chosen, loop)
        atomic_write_json(
            out_dir / f"{name}.json",
            {
                "loop": loop.__dict__,
                "plants": [p.as_dict() for p in chosen],
                "features": feats.to_dict(orient="records"),
            },
        )
    summary = {
        "rows": {name: len(idx) for name, idx in parts.items()},
        "by_kind": pd.Series([p.kind for p in plants]).value_counts().sort_index().to_dict(),
        "features": tuning.FEATURES,
        "loop": loop.__dict__,
    }
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


def load_split(out_dir: Path, split: str) -> ControlSplit:
    path = Path(out_dir) / f"{split}.json"
    if not path.is_file():
        raise DataError(f"{path}: not found; run the prepare stage first")
    raw = json.loads(path.read_text())
    plants = [Plant(**p) for p in raw["plants"]]
    return ControlSplit(
        plants=plants,
        loop=Loop(**raw["loop"]),
        X=pd.DataFrame(raw["features"], columns=tuning.FEATURES),
        groups=np.array([p.kind for p in plants]),
    )
