"""Resumable training checkpoints, one format for every loop: a directory per (kind, params,
seed, data) holding `state.pt` (weights, optimiser, schedule, RNG and the loop's counters),
written to a temporary name and renamed so a stop never leaves half a file that looks valid."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

STATE = "state.pt"


def checkpoint_dir(kind: str, params: Any, seed: int, extra: str = "") -> Path:
    """.reprolab/checkpoints/<kind>-<digest of params, seed, extra> under the workspace (or
    $REPROLAB_CHECKPOINTS). Same params -> same directory, so rerunning the stage resumes."""
    from reprolab.core.paths import workspace_root

    blob = json.dumps(
        {
            "params": params.model_dump(mode="json", exclude={"workload"}),
            "seed": seed,
            "extra": extra,
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
    parent = os.environ.get("REPROLAB_CHECKPOINTS")
    root = Path(parent) if parent else workspace_root() / ".reprolab" / "checkpoints"
    return root / f"{kind}-{digest}"


def save(directory: Path, state: dict) -> None:
    """One file, written to a temporary name and renamed: never half-written."""
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f"{STATE}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, directory / STATE)


def load(directory: Path) -> dict | None:
    """The saved state, or None when there is none."""
    import torch

    path = directory / STATE
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


def save_training(directory: Path, model, optimiser, schedule, **progress: Any) -> None:
    """Weights, optimiser, schedule and RNG, plus the loop's own counters (`progress`: step,
    position in the epoch, best-so-far...)."""
    save(
        directory,
        {
            "model": model.state_dict(),
            "optimiser": optimiser.state_dict(),
            "schedule": schedule.state_dict() if schedule is not None else None,
            "rng": rng_state(),
            **progress,
        },
    )


def restore_training(state: dict, model, optimiser, schedule) -> dict:
    """Put a `save_training` checkpoint back; returns it for the loop's counters."""
    model.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimiser"])
    if schedule is not None and state.get("schedule") is not None:
        schedule.load_state_dict(state["schedule"])
    set_rng_state(state["rng"])
    return state


def clear(directory: Path) -> None:
    """Drop a finished run's checkpoint."""
    shutil.rmtree(directory, ignore_errors=True)


def rng_state() -> dict:
    import torch

    return {"torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    import torch

    torch.set_rng_state(state["torch"])
