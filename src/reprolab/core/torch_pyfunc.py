"""Torch models as MLflow models with two flavours over one copy of the weights:

- `pytorch`: the network exported with `torch.export` (MLflow's safe `pt2` graph format, no
  pickle), so `mlflow.pytorch.load_model(path)` gives a callable module anywhere torch and
  MLflow are installed. The export is a complete `mlflow.pytorch` model of its own under
  `artifacts/net/`; the root's MLmodel points at its data;
- `python_function`: a small PythonModel that rebuilds the eager module from a JSON config,
  loads the weights from that same archive, and adds the family's pre- and post-processing.

Shared by every torch family so that saving, loading and MLflow's quirks live in one place."""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import torch

from reprolab.core.requirements import TORCH, pins
from reprolab.core.saving import save_pyfunc

NET = "net"  # the exported network's artifact name: artifacts/net/, data under data/


def save(
    path: Path,
    module: torch.nn.Module,
    config: dict[str, Any],
    python_model: mlflow.pyfunc.PythonModel,
    input_example: Any,
    net_example: torch.Tensor,
    dynamic: Sequence[int] = (0,),
    packages: tuple[str, ...] = (),
    signature: Any = None,
) -> None:
    """Write an MLflow model directory at `path` (explicit pip requirements: fast). The
    requirements are TORCH plus `packages`: what the family's predict needs beyond them.
    Without `signature`, MLflow infers one by running the wrapper on `input_example`.
    `net_example` is one input batch of the network itself, traced by `torch.export`; the
    axes in `dynamic` (the batch by default) may take any size in the exported graph."""
    example = _batch_of_two(net_example.detach().cpu())
    shape = [-1 if axis in dynamic else size for axis, size in enumerate(example.shape)]
    with tempfile.TemporaryDirectory() as tmp:
        exported = Path(tmp) / "net"
        _export(_cpu_eval(module), exported, example, shape)
        config_file = Path(tmp) / "config.json"
        config_file.write_text(json.dumps(config, sort_keys=True))
        save_pyfunc(
            path,
            python_model=python_model,
            artifacts={"config": str(config_file), NET: str(exported)},
            input_example=input_example,
            signature=signature,
            pip_requirements=pins(*TORCH, *packages),
        )
    _add_pytorch_flavor(Path(path), example.dtype, shape)


def _cpu_eval(module: torch.nn.Module) -> torch.nn.Module:
    """The module in eval mode on the CPU, where the saved graph and weights live; a copy
    when it is elsewhere, so the caller's module stays where it was."""
    on_cpu = all(t.device.type == "cpu" for t in [*module.parameters(), *module.buffers()])
    net = module if on_cpu else copy.deepcopy(module).cpu()
    return net.eval()


def _batch_of_two(example: torch.Tensor) -> torch.Tensor:
    """`torch.export` fixes an axis of size 1 as a constant: trace a batch of at least two so
    the saved graph takes any batch size."""
    return example if example.shape[0] >= 2 else torch.cat([example[:1], example[:1]])


def _export(net: torch.nn.Module, target: Path, example: torch.Tensor, shape: list[int]) -> None:
    import logging
    import warnings

    import mlflow.pytorch
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    array = example.numpy()
    signature = ModelSignature(inputs=Schema([TensorSpec(array.dtype, tuple(shape))]))
    quiet = logging.getLogger("mlflow.pytorch")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # setLevel, not .level: it clears logging's cached checks
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            mlflow.pytorch.save_model(
                net,
                str(target),
                serialization_format="pt2",
                input_example=array,
                signature=signature,
                pip_requirements=pins(*TORCH),
            )
    finally:
        quiet.setLevel(level)


def _add_pytorch_flavor(path: Path, dtype: torch.dtype, shape: list[int]) -> None:
    """Declare the exported network in the model's MLmodel beside its pyfunc flavour, with
    the input it takes (-1: any size on that axis)."""
    from mlflow.models import Model

    model = Model.load(str(path))
    model.add_flavor(
        "pytorch",
        model_data=f"artifacts/{NET}/data",
        pytorch_version=str(torch.__version__),
        serialization_format="pt2",
        input_dtype=str(dtype).removeprefix("torch."),
        input_shape=shape,
    )
    model.save(str(path / "MLmodel"))


def config_of(context) -> dict[str, Any]:
    """The JSON config saved with the model (inside a PythonModel's load_context)."""
    return json.loads(Path(context.artifacts["config"]).read_text())


def load_weights(module: torch.nn.Module, context) -> torch.nn.Module:
    """Load the saved weights into a freshly built `module`, in eval mode: from the exported
    network's archive, or from `weights.pt` in models saved before it existed."""
    if "weights" in context.artifacts:  # saved before the pytorch flavour
        state = torch.load(context.artifacts["weights"], map_location="cpu", weights_only=True)
    else:
        state = _exported_state(context.artifacts[NET])
    module.load_state_dict(state)
    return module.eval()


def _exported_state(net_model: str) -> dict[str, torch.Tensor]:
    """The parameters and buffers of an exported network, read through MLflow's loader (which
    checks that the archive is free of pickle payloads first)."""
    import warnings

    import mlflow.pytorch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = mlflow.pytorch.load_model(net_model)
    return graph.state_dict()
