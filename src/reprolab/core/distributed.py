"""Multi-process training under `torchrun --nproc_per_node N` (DistributedDataParallel),
shared by the torch trainers. Without torchrun every helper is a no-op for one process, so a
trainer written against it runs unchanged on a laptop.

A trainer: `dist = distributed.init()`, `ddp = distributed.wrap(module, dist)`, take
`distributed.shard(order, dist)` of each epoch's permutation, `distributed.mean(x, dist)` for
logged numbers, log and save only `if dist.is_main`, `distributed.check_in_sync(module, dist)`
at the end, `distributed.finish()` when the process is done.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as td


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")  # noqa: RUF009 (immutable)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched() -> bool:
    """Started by torchrun (or another launcher that sets the env:// rendezvous)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(backend: str | None = None) -> Dist:
    """Join the process group torchrun set up (NCCL on GPUs, gloo on CPU); idempotent."""
    if not launched():
        return Dist()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and backend != "gloo"
    if not td.is_initialized():
        if cuda:
            torch.cuda.set_device(local_rank)
        td.init_process_group(backend or ("nccl" if cuda else "gloo"))
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    return Dist(td.get_rank(), td.get_world_size(), local_rank, device)


def current() -> Dist:
    """The state of an already-initialised group (one process if none)."""
    if not (td.is_available() and td.is_initialized()):
        return Dist()
    cuda = td.get_backend() == "nccl"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    return Dist(td.get_rank(), td.get_world_size(), local_rank, device)


def wrap(module: torch.nn.Module, dist: Dist) -> torch.nn.Module:
    """DDP around `module` (rank 0's weights are broadcast to all); the module itself alone."""
    module.to(dist.device)
    if not dist.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [dist.local_rank] if dist.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def shard(order: torch.Tensor, dist: Dist) -> torch.Tensor:
    """This rank's equal share of a permutation that every rank drew with the same seed
    (the tail that does not divide evenly is dropped, so all ranks take as many steps)."""
    if not dist.enabled:
        return order
    usable = len(order) // dist.world_size * dist.world_size
    return order[:usable][dist.rank :: dist.world_size]


def mean(value: float, dist: Dist) -> float:
    """The mean of a number over all ranks (for logging what the whole batch saw)."""
    if not dist.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=dist.device)
    td.all_reduce(tensor)
    return float(tensor.item()) / dist.world_size


def check_in_sync(module: torch.nn.Module, dist: Dist, atol: float = 1e-6) -> None:
    """Raise if the ranks' parameters differ (they must, after DDP's averaged gradients)."""
    if not dist.enabled:
        return
    flat = torch.cat([p.detach().reshape(-1).double() for p in module.parameters()])
    low, high = flat.clone(), flat.clone()
    td.all_reduce(low, op=td.ReduceOp.MIN)
    td.all_reduce(high, op=td.ReduceOp.MAX)
    spread = float((high - low).abs().max())
    if spread > atol:
        raise RuntimeError(f"rank {dist.rank}: parameters diverged across ranks by {spread:.3g}")


def finish() -> None:
    if td.is_available() and td.is_initialized():
        td.destroy_process_group()
