"""The pieces of Mini-T's training loop: the learning-rate schedule, random token windows
from a stream, and the next-token loss."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


class Windows:
    """Random training windows (x, y = x shifted by one) from a token stream."""

    def __init__(self, tokens: np.ndarray, block: int, batch: int, seed: int) -> None:
        if len(tokens) < block + 2:
            raise ValueError(f"{len(tokens)} tokens: fewer than block_size + 2 = {block + 2}")
        self.data = torch.from_numpy(tokens.astype(np.int64))
        self.block, self.batch = block, batch
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(
            len(self.data) - self.block - 1, (self.batch,), generator=self.generator
        )
        return self._at(starts)

    def _at(self, starts) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.stack([self.data[s : s + self.block] for s in starts.tolist()])
        y = torch.stack([self.data[s + 1 : s + 1 + self.block] for s in starts.tolist()])
        return x, y

    def fixed(self, n_batches: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The same `n_batches` windows every time (comparable validation points)."""
        g = torch.Generator().manual_seed(seed)
        span = len(self.data) - self.block - 1
        return [self._at(torch.randint(span, (self.batch,), generator=g)) for _ in range(n_batches)]


def loss_of(net, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits = net(input_ids=x).logits
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
