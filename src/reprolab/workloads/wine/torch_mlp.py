"""A torch MLP regressor: standardisation inside the module (so the saved model takes raw
features), AdamW, early stopping on validation RMSE with the best weights restored, a progress
bar, and per-epoch curves. Saved as an MLflow pyfunc model (weights + config + the class).
Under `torchrun --nproc_per_node N` it trains with DistributedDataParallel: each rank takes an
equal shard of every epoch's permutation, gradients are averaged, only rank 0 logs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Self

import mlflow.pyfunc
import numpy as np
import torch
from torch import nn

from reprolab.core import distributed, torch_pyfunc
from reprolab.core.model import Model, StepLogger
from reprolab.core.train.loop import Loop
from reprolab.core.train.setup import record, reproducible_fit, resolve_device


class MLP(nn.Module):
    def __init__(self, n_features: int, hidden: list[int], dropout: float) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        layers: list[nn.Module] = []
        width = n_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std).squeeze(-1)


class TorchMLPRegressor(Model):
    def __init__(self, params: Any, seed: int) -> None:
        super().__init__(params, seed)
        self.module: MLP | None = None
        self.feature_names: list[str] = []
        self.best_epoch = 0

    @reproducible_fit
    def fit(self, train: Any, valid: Any, run: StepLogger | None = None) -> Self:
        p = self.params
        dist = distributed.current()
        if not dist.enabled:  # under torchrun, each rank's device comes with its rank
            dist = dataclasses.replace(dist, device=torch.device(resolve_device(p.device)))
        record(run, device=dist.device.type, bf16=False)
        torch.manual_seed(self.seed)
        generator = torch.Generator().manual_seed(self.seed)  # same permutation on every rank
        self.feature_names = list(train.X.columns)
        x, y = _tensor(train.X), torch.tensor(train.y, dtype=torch.float32)
        xv, yv = _tensor(valid.X), torch.tensor(valid.y, dtype=torch.float32)
        module = MLP(x.shape[1], p.hidden, p.dropout)
        module.mean.copy_(x.mean(0))
        module.std.copy_(x.std(0).clamp_min(1e-6))
        # predict the offset from the mean grade: the network starts at a sensible answer
        with torch.no_grad():
            module.net[-1].bias.fill_(float(y.mean()))
        ddp = distributed.wrap(module, dist)  # the module itself in a single process
        x, y, xv, yv = (t.to(dist.device) for t in (x, y, xv, yv))
        optimiser = torch.optim.AdamW(module.parameters(), lr=p.lr, weight_decay=p.weight_decay)
        batch = max(1, p.batch_size // dist.world_size)  # the global batch stays batch_size

        def epoch(_: int) -> dict[str, float]:
            ddp.train()
            mine = distributed.shard(torch.randperm(len(x), generator=generator), dist)
            mine = mine.to(dist.device)
            total = 0.0
            for start in range(0, len(mine), batch):
                idx = mine[start : start + batch]
                loss = nn.functional.mse_loss(ddp(x[idx]), y[idx])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total += loss.item() * len(idx)
            return {"train_rmse": distributed.mean(total / len(mine), dist) ** 0.5}

        loop = Loop(
            "mlp",
            steps=p.max_epochs,
            eval_every=1,
            unit="epoch",
            monitor="valid_rmse",
            mode="min",
            patience=p.patience,
            min_delta=1e-5,
            quiet=not dist.is_main,
        )
        # same weights on every rank: the same validation score and stopping decision
        outcome = loop.run(
            epoch,
            lambda: {"valid_rmse": _rmse(module, xv, yv)},
            run=run,
            keep=module,
        )
        self.best_epoch = outcome.best_step
        distributed.check_in_sync(module, dist)
        self.module = module.cpu().eval()
        return self

    def predict(self, inputs: Any) -> np.ndarray:
        if self.module is None:
            raise RuntimeError("fit the model before predicting")
        with torch.no_grad():
            return self.module(_tensor(inputs[self.feature_names])).numpy().astype(float)

    def save(self, path: Path, input_example: Any) -> None:
        if self.module is None:
            raise RuntimeError("fit the model before saving")
        config = {
            "features": self.feature_names,
            "hidden": list(self.params.hidden),
            "dropout": self.params.dropout,
        }
        example = torch.zeros(2, len(self.feature_names))  # the net's input batch
        torch_pyfunc.save(path, self.module, config, MLPPyfunc(), input_example, example)


class MLPPyfunc(mlflow.pyfunc.PythonModel):
    """Serving wrapper: a DataFrame with the training feature columns in, predictions out."""

    def load_context(self, context) -> None:
        config = torch_pyfunc.config_of(context)
        self.features = config["features"]
        module = MLP(len(self.features), config["hidden"], config["dropout"])
        self.module = torch_pyfunc.load_weights(module, context)

    def predict(self, context, model_input, params=None):
        with torch.no_grad():
            return self.module(_tensor(model_input[self.features])).numpy().astype(float)


def _tensor(frame: Any) -> torch.Tensor:
    return torch.tensor(np.asarray(frame, dtype=np.float32))


def _rmse(module: MLP, x: torch.Tensor, y: torch.Tensor) -> float:
    module.eval()
    with torch.no_grad():
        return float(torch.sqrt(nn.functional.mse_loss(module(x), y)))
