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
    position in the epoch, best-so-far...), as CPU tensors: a GPU run resumes anywhere."""
    save(
        directory,
        on_cpu(
            {
                "model": model.state_dict(),
                "optimiser": optimiser.state_dict(),
                "schedule": schedule.state_dict() if schedule is not None else None,
                "rng": rng_state(),
                **progress,
            }
        ),
    )


def on_cpu(value: Any) -> Any:
    """`value` with every tensor in its dicts, lists and tuples moved to the CPU; the very
    same objects where everything is there already (so a CPU run's file is unchanged)."""
    import copy

    import torch

    if isinstance(value, torch.Tensor):
        return value if value.device.type == "cpu" else value.cpu()
    if isinstance(value, dict):
        moved = {key: on_cpu(item) for key, item in value.items()}
        if all(moved[key] is item for key, item in value.items()):
            return value
        out = copy.copy(value)  # keeps the type and a state dict's `_metadata`
        out.update(moved)
        return out
    if isinstance(value, list | tuple):
        items = [on_cpu(item) for item in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items) if isinstance(value, list) else tuple(items)
    return value


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
