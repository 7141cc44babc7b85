"""Threads and device, named the same in every family: `threads` caps torch's intra-op
threads (a shared machine is slower oversubscribed), `device()` picks CUDA when it works."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


def set_threads(n: int | None) -> None:
    """Cap torch's intra-op threads; None or 0 leaves torch's default."""
    if n:
        import torch

        torch.set_num_threads(int(n))


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """`set_threads(n)` for the block, then the previous count again."""
    import torch

    previous = torch.get_num_threads()
    set_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def device() -> str:
    """ "cuda" when a CUDA device is usable, else "cpu" (a clean capability check)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
