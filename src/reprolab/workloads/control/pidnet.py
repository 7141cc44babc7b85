"""PIDNet: a small network from a plant's step-test features to PID gains, trained by
back-propagating the closed-loop cost (IAE + weighted overshoot + control effort) through
the differentiable simulation (reprolab.workloads.control.simulate).

The network predicts log-multipliers on the plant's own scale (Kp ~ 1/(R L), Ti, Td ~ L),
starting from a conservative tuning, so every plant is learned on the same footing. Saved
as an MLflow pyfunc model: features in, a frame of (kp, ki, kd) out."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch
from torch import nn

from reprolab.core import torch_pyfunc
from reprolab.core.model import Model, StepLogger
from reprolab.core.train.loop import Loop
from reprolab.core.train.setup import module_device, record, reproducible_fit, resolve_device
from reprolab.workloads.control.tuning import FEATURES

GAINS = ["kp", "ki", "kd"]
# starting point (network output 0): Kp = 0.5/(R L), Ti = 3 L, Td = 0.3 L
START = (0.5, 3.0, 0.3)


class GainNet(nn.Module):
    def __init__(self, hidden: list[int], setpoint_weight: bool = False) -> None:
        super().__init__()
        self.setpoint_weight = setpoint_weight
        layers: list[nn.Module] = []
        width = 5
        for size in hidden:
            layers += [nn.Linear(width, size), nn.Tanh()]
            width = size
        last = nn.Linear(width, 4 if setpoint_weight else 3)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """f: (B, 5) raw FEATURES -> (B, 3) gains (Kp, Ki, Kd), all positive; (B, 4) with
        the setpoint weight b = sigmoid(output), 0.5 at the start, when `setpoint_weight`."""
        slope, dead, lag, integ, overshoot = f.unbind(1)
        lag_ratio = torch.where(integ > 0.5, torch.full_like(lag, 20.0), lag / dead)
        x = torch.stack(
            [
                torch.log(slope),
                torch.log(dead),
                torch.log(lag_ratio.clamp(0.05, 20.0)),
                integ,
                overshoot.clamp(0, 2),
            ],
            1,
        )
        out = self.net(x)
        m = torch.exp(out[:, :3].clamp(-4, 4))
        kp = START[0] * m[:, 0] / (slope * dead)
        ti = START[1] * m[:, 1] * dead
        td = START[2] * m[:, 2] * dead
        gains = [kp, kp / ti, kp * td]
        if self.setpoint_weight:
            gains.append(torch.sigmoid(out[:, 3]))
        return torch.stack(gains, 1)


class PIDNet(Model):
    def __init__(self, params: Any, seed: int) -> None:
        super().__init__(params, seed)
        self.module: GainNet | None = None

    def _loss(self, split: Any, batch: Any, idx: torch.Tensor, feats: torch.Tensor):
        from reprolab.workloads.control import metrics, simulate

        p = self.params
        sub = simulate.Batch(
            batch.ad[idx], batch.bd[idx], batch.delay[idx], batch.noise[idx], batch.loop
        )
        traj = simulate.closed_loop(sub, self.module(feats[idx]).to(torch.float64))
        loop = split.loop
        cost = (
            metrics.iae(traj, loop.dt)
            + p.overshoot_weight * 100 * metrics.overshoot(traj, loop.disturbance_step) * loop.dt
            + p.effort_weight * metrics.effort(traj)
        )
        ok = torch.isfinite(cost)
        if not bool(ok.any()):
            raise FloatingPointError("every closed loop of the batch diverged")
        return cost[ok].mean()

    @reproducible_fit
    def fit(self, train: Any, valid: Any, run: StepLogger | None = None) -> Self:

        p = self.params
        device = resolve_device(p.device)
        record(run, device=device, bf16=False)
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        self.module = GainNet(p.hidden, p.setpoint_weight).to(torch.float64).to(device)
        opt = torch.optim.Adam(self.module.parameters(), lr=p.lr)
        feats = torch.tensor(train.X[FEATURES].to_numpy(), dtype=torch.float64).to(device)
        batch = train.batch().to(device)

        def epoch(_: int) -> dict[str, float]:
            self.module.train()
            order = torch.randperm(len(feats), generator=gen).to(device)
            total, count = 0.0, 0
            for start in range(0, len(feats), p.batch_size):
                idx = order[start : start + p.batch_size]
                loss = self._loss(train, batch, idx, feats)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.module.parameters(), 5.0)
                opt.step()
                total, count = total + loss.item() * len(idx), count + len(idx)
            return {"train_loss": total / count}

        loop = Loop(
            "pidnet",
            steps=p.epochs,
            eval_every=1,
            unit="epoch",
            monitor="valid_iae",
            mode="min",
            patience=p.patience,
            min_delta=1e-4,
        )
        loop.run(epoch, lambda: {"valid_iae": self._valid_iae(valid)}, run=run, keep=self.module)
        self.module = self.module.cpu().eval()  # saved and served from the CPU
        return self

    def _valid_iae(self, valid: Any) -> float:
        from reprolab.workloads.control.data import SimulationError

        try:
            return float(np.mean(valid.simulate(self.predict(valid.X))["iae"]))
        except SimulationError:
            return float("inf")

    def predict(self, inputs: Any) -> pd.DataFrame:
        if self.module is None:
            raise RuntimeError("fit the model before predicting")
        return _predict(self.module, inputs)

    def save(self, path: Path, input_example: Any) -> None:
        if self.module is None:
            raise RuntimeError("fit the model before saving")
        p = self.params
        config = {"hidden": list(p.hidden), "setpoint_weight": p.setpoint_weight}
        example = torch.zeros(2, len(FEATURES), dtype=torch.float64)  # the net's input batch
        torch_pyfunc.save(path, self.module, config, PIDNetPyfunc(), input_example, example)


def _predict(module: GainNet, inputs: Any) -> pd.DataFrame:
    missing = [c for c in FEATURES if c not in inputs.columns]
    if missing:
        raise ValueError(f"missing step-test feature column(s) {missing}; expected {FEATURES}")
    with torch.no_grad():
        f = torch.tensor(inputs[FEATURES].to_numpy(dtype=float), dtype=torch.float64)
        gains = module(f.to(module_device(module))).cpu().numpy()
    return pd.DataFrame(gains, columns=[*GAINS, "b"][: gains.shape[1]])


class PIDNetPyfunc(mlflow.pyfunc.PythonModel):
    """Serving wrapper: step-test features (FEATURES columns) in, gains (kp, ki, kd[, b]) out."""

    def load_context(self, context) -> None:
        config = torch_pyfunc.config_of(context)
        module = GainNet(config["hidden"], config.get("setpoint_weight", False))
        self.module = torch_pyfunc.load_weights(module.to(torch.float64), context)

    def predict(self, context, model_input, params=None):
        return _predict(self.module, model_input)
