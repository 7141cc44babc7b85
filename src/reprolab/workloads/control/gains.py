"""`reprolab pid`: gains for one plant from the champion PIDNet (or any saved model), the
simulated closed loop against Ziegler–Nichols, and a plot: the original project's "use the
final model" step. The plant is identified from its own simulated step test, exactly as
the test plants were, so the model sees the same kind of features."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from reprolab.core.errors import DataError
from reprolab.workloads.control.plants import Loop, Plant, check

PLANT_KEYS = ("kind", "gain", "delay", "time_constant", "damping", "natural_frequency")


def plant_from_yaml(path: Path) -> Plant:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError as err:
        raise DataError(f"{path}: file not found") from err
    except yaml.YAMLError as err:
        raise DataError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a mapping with keys {list(PLANT_KEYS)}")
    unknown = sorted(set(raw) - set(PLANT_KEYS))
    if unknown:
        raise DataError(f"{path}: unknown key(s) {unknown}; expected {list(PLANT_KEYS)}")
    if "kind" not in raw or "gain" not in raw or "delay" not in raw:
        raise DataError(f"{path}: needs at least kind, gain and delay")
    return Plant(**raw)


def tune(plant: Plant, loop: Loop, model: str) -> dict[str, Any]:
    """Gains from `model` (a models:/ URI or a saved model directory) and both loops."""
    import torch

    from reprolab.core import saving
    from reprolab.core.tracking import client
    from reprolab.workloads.control import metrics, simulate, tuning
    from reprolab.workloads.control.data import WEIGHTED, features_of, weighted

    check(plant, loop)
    client()  # points MLflow at the repository's store for models:/ URIs
    feats = features_of([plant], loop)
    predicted = saving.load_predictor(model).predict(feats)
    gains = {"pidnet": weighted(predicted)[0]}
    gains["ziegler_nichols"] = weighted(tuning.ziegler_nichols(feats))[0]
    gains["simc"] = weighted(tuning.simc(feats))[0]
    batch = simulate.batch([plant] * len(gains), loop)
    with torch.no_grad():
        traj = simulate.closed_loop(batch, torch.tensor(np.stack(list(gains.values()))))
    per = metrics.per_plant(traj, loop.dt, loop.disturbance_step)
    if bool(simulate.diverged(traj)[0]):
        raise DataError(f"the closed loop under PIDNet's gains {gains['pidnet']} diverges")
    return {
        "plant": plant.as_dict(),
        "features": feats.iloc[0].to_dict(),
        "gains": {k: dict(zip(WEIGHTED, map(float, v), strict=True)) for k, v in gains.items()},
        "metrics": {k: {m: float(per[m][i]) for m in per} for i, k in enumerate(gains)},
        "t": traj.t.numpy(),
        "y": {k: traj.y[i].numpy() for i, k in enumerate(gains)},
        "u": {k: traj.u[i].numpy() for i, k in enumerate(gains)},
    }


def plot(result: dict, loop: Loop, path: Path) -> Path:
    from reprolab.core.figures import plt, save

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    for name, y in result["y"].items():
        top.plot(result["t"], y, lw=1.3, label=name)
        bottom.plot(result["t"], result["u"][name], lw=1.0, label=name)
    top.axhline(1.0, c="k", lw=0.6, ls="--")
    for ax in (top, bottom):
        ax.axvline(loop.disturbance_time, c="grey", lw=0.6, ls=":")
    p = result["plant"]
    top.set_title(f"{p['kind']}: gain {p['gain']:g}, delay {p['delay']:g}s")
    top.set_ylabel("y")
    bottom.set_ylabel("u")
    bottom.set_xlabel("t (s)")
    top.legend(fontsize=8)
    return save(fig, path)
