"""Learning-rate schedules: linear warm-up, then cosine, linear or no decay to a floor. One
function serves every family (as a LambdaLR factor with peak=1, or as an absolute rate)."""

from __future__ import annotations

import math
from typing import Literal

Decay = Literal["cosine", "linear", "constant"]


def warmup_decay(
    step: int,
    *,
    warmup: int,
    total: int,
    peak: float = 1.0,
    floor: float = 0.0,
    decay: Decay = "cosine",
) -> float:
    """The rate at `step` (0-based): `peak * (step + 1) / warmup` while warming up, then
    `decay` from `peak` to `floor` over the planned `total` steps (steps, never seconds: the
    schedule, like the model, must not depend on how fast the machine is)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    if decay == "constant":
        return peak
    if decay == "linear":
        return max(0.0, floor + (peak - floor) * (total - step) / max(1, total - warmup))
    progress = (step - warmup) / max(1, total - warmup)
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * min(1.0, max(0.0, progress))))


def lambda_lr(optimiser, *, total: int, **schedule):
    """A torch LambdaLR following `warmup_decay(step, total=total, **schedule)` (as a factor
    of the lr)."""
    import torch

    return torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: warmup_decay(s, total=total, **schedule)
    )
