"""Torch models as MLflow pyfunc models: weights (state dict) and a JSON config saved as
artifacts beside a small PythonModel that rebuilds the module. Shared by every torch family
so that saving, loading and MLflow's quirks live in one place."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import torch

from reprolab.core.requirements import TORCH, pins
from reprolab.core.saving import save_pyfunc


def save(
    path: Path,
    module: torch.nn.Module,
    config: dict[str, Any],
    python_model: mlflow.pyfunc.PythonModel,
    input_example: Any,
    packages: tuple[str, ...] = (),
    signature: Any = None,
) -> None:
    """Write an MLflow model directory at `path` (explicit pip requirements: fast). The
    requirements are TORCH plus `packages`: what the family's predict needs beyond them.
    Without `signature`, MLflow infers one by running the wrapper on `input_example`."""
    with tempfile.TemporaryDirectory() as tmp:
        weights, config_file = Path(tmp) / "weights.pt", Path(tmp) / "config.json"
        torch.save(module.state_dict(), weights)
        config_file.write_text(json.dumps(config, sort_keys=True))
        save_pyfunc(
            path,
            python_model=python_model,
            artifacts={"weights": str(weights), "config": str(config_file)},
            input_example=input_example,
            signature=signature,
            pip_requirements=pins(*TORCH, *packages),
        )


def config_of(context) -> dict[str, Any]:
    """The JSON config saved with the model (inside a PythonModel's load_context)."""
    return json.loads(Path(context.artifacts["config"]).read_text())


def load_weights(module: torch.nn.Module, context) -> torch.nn.Module:
    """Load the saved weights into a freshly built `module`, in eval mode."""
    state = torch.load(context.artifacts["weights"], map_location="cpu", weights_only=True)
    module.load_state_dict(state)
    return module.eval()
