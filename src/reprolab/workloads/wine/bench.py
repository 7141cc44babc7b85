"""The wine MLP's training loop as the pipeline runs it (early-stopping bookkeeping, a progress
bar, every epoch logged to dvclive and a SQLite MLflow store) against a bare PyTorch loop over
the same data, model and optimiser: what our tracking costs per epoch."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from reprolab.core.bench import Entry

EPOCHS = 5
ROWS, FEATURES = 3458, 12  # the wine training split


def _variants() -> dict:
    import numpy as np
    import pandas as pd
    import torch
    from torch import nn

    from reprolab.core.metrics import regression_by_group
    from reprolab.workloads.wine.params import TorchMLPParams
    from reprolab.workloads.wine.torch_mlp import MLP, TorchMLPRegressor

    rng = np.random.default_rng(0)

    class Split:
        def __init__(self, n: int) -> None:
            self.X = pd.DataFrame(rng.normal(size=(n, FEATURES)), columns=list("abcdefghijkl"))
            self.y = 5 + self.X["a"].to_numpy() + rng.normal(0, 0.5, n)
            self.groups = np.zeros(n)

        def score(self, pred):
            return regression_by_group(self.y, pred, self.groups)

    train, valid = Split(ROWS), Split(800)
    params = TorchMLPParams(
        kind="torch_mlp",
        dataset="d",
        task="t",
        hidden=[128, 64],
        batch_size=128,
        lr=3e-3,
        max_epochs=EPOCHS,
        patience=EPOCHS,
    )
    store = Path(tempfile.mkdtemp(prefix="reprolab-bench-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store / 'mlflow.db'}"
    os.environ["REPROLAB_MLFLOW_ARTIFACTS"] = (store / "artifacts").as_uri()

    def ours() -> None:
        from reprolab.core.tracking import Run

        with Run("bench", run_name="mlp", live_dir=store / "live") as run:
            TorchMLPRegressor(params, seed=0).fit(train, valid, run)

    x = torch.tensor(train.X.to_numpy(dtype="float32"))
    y = torch.tensor(train.y, dtype=torch.float32)
    xv = torch.tensor(valid.X.to_numpy(dtype="float32"))
    yv = torch.tensor(valid.y, dtype=torch.float32)

    def bare() -> None:
        torch.manual_seed(0)
        net = MLP(FEATURES, params.hidden, params.dropout)
        opt = torch.optim.AdamW(net.parameters(), lr=params.lr, weight_decay=params.weight_decay)
        for _ in range(EPOCHS):
            net.train()
            for idx in torch.randperm(len(x)).split(params.batch_size):
                loss = nn.functional.mse_loss(net(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            net.eval()
            with torch.no_grad():
                nn.functional.mse_loss(net(xv), yv)

    return {"baseline": bare, "candidate": ours}


ENTRY = Entry(
    name="mlp-loop",
    unit=f"{EPOCHS}-epoch fit",
    setup=_variants,
    claim="our tracked training loop vs a bare PyTorch loop (1.0 = no overhead)",
)
