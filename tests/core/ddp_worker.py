"""Run by test_distributed.py under `torchrun --nproc_per_node 2`: trains the real torch MLP
for a few epochs on synthetic data and writes what this rank ended with (its shard, the last
gradients, the parameters, the logged numbers) to OUT/rank<N>.json for the test to compare."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from reprolab.core import distributed
from reprolab.workloads.wine.params import TorchMLPParams
from reprolab.workloads.wine.torch_mlp import TorchMLPRegressor


class Split:
    def __init__(self, X: pd.DataFrame, y: np.ndarray) -> None:
        self.X, self.y = X, y


class Steps:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def log_step(self, step: int, metrics: dict[str, float]) -> None:
        self.rows.append({"step": step, **metrics})


def main(out: Path) -> None:
    dist = distributed.init()
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(203, 4)), columns=list("abcd"))
    y = X.to_numpy() @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(scale=0.1, size=203)
    params = TorchMLPParams(
        dataset="d", task="t", workload="wine", kind="torch_mlp", hidden=[16], dropout=0.0, lr=0.01,
        batch_size=32, max_epochs=3, patience=10,
    )  # fmt: skip
    steps = Steps()
    model = TorchMLPRegressor(params, seed=7).fit(Split(X, y), Split(X, y), steps)
    shard = distributed.shard(torch.randperm(203, generator=torch.Generator().manual_seed(7)), dist)
    module = model.module
    result = {
        "rank": dist.rank,
        "world_size": dist.world_size,
        "shard": shard.tolist(),
        "grads": torch.cat([p.grad.reshape(-1) for p in module.parameters()]).tolist(),
        "params": torch.cat([p.detach().reshape(-1) for p in module.parameters()]).tolist(),
        "steps": steps.rows,
    }
    (out / f"rank{dist.rank}.json").write_text(json.dumps(result))
    distributed.finish()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
