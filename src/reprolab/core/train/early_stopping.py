"""Early stopping on a validation metric, keeping the best weights seen."""

from __future__ import annotations

import copy
import math
from typing import Any, Literal


class EarlyStopping:
    """Counts evaluations without an improvement larger than `min_delta`; `stop` once there
    have been `patience` of them. With a `module`, a copy of its weights is taken at the start
    and at each improvement, and `restore` puts the best ones back."""

    def __init__(
        self,
        patience: int,
        mode: Literal["min", "max"] = "min",
        min_delta: float = 0.0,
        module: Any = None,
        best: float | None = None,
    ) -> None:
        self.patience, self.mode, self.min_delta = patience, mode, min_delta
        self.best = best if best is not None else (math.inf if mode == "min" else -math.inf)
        self.stale = 0
        self.best_state = copy.deepcopy(module.state_dict()) if module is not None else None

    def update(self, value: float, module: Any = None) -> bool:
        """Record one evaluation; True when it improved on the best (its weights are kept)."""
        if self.mode == "min":
            improved = value < self.best - self.min_delta
        else:
            improved = value > self.best + self.min_delta
        if improved:
            self.best, self.stale = value, 0
            if module is not None:
                self.best_state = copy.deepcopy(module.state_dict())
        else:
            self.stale += 1
        return improved

    @property
    def stop(self) -> bool:
        return self.stale >= self.patience

    def restore(self, module: Any) -> None:
        """Load the best weights seen into `module`."""
        if self.best_state is not None:
            module.load_state_dict(self.best_state)
