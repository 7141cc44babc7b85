"""Threads, device, precision and determinism, named the same in every family: `set_threads` caps
torch's intra-op threads (a shared machine is slower oversubscribed), `resolve_device` turns the
`device: auto|cpu|cuda` param into where to train, `resolve_bf16` the `bf16: auto|true|false`
param into whether to autocast, by what the hardware runs natively, and `reproducible` makes a
fit depend on code, params and data only (deterministic kernels, a fixed thread count, seeds)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, Literal

Device = Literal["auto", "cpu", "cuda"]
# threads a deterministic fit uses when its params name none: a fixed number, never "all cores",
# since how a reduction is split between threads changes its float rounding
DETERMINISTIC_THREADS = 2
# true, false or auto (the hardware decides); one Literal so a bad value fails in one line
Bf16 = Literal[True, False, "auto"]


def set_threads(n: int | None) -> None:
    """Cap torch's intra-op threads; None or 0 leaves torch's default."""
    if n:
        import torch

        torch.set_num_threads(int(n))


@contextlib.contextmanager
def reproducible(
    deterministic: bool, threads: int | None, seed: int, run: Any = None
) -> Iterator[None]:
    """The block runs as `deterministic` asks: with it, torch's deterministic algorithms
    (an op without one raises instead of drifting), cuDNN without autotuning, a fixed thread
    count (`threads`, else DETERMINISTIC_THREADS) and every RNG seeded with `seed`; without
    it only `threads` applies. The choice, the thread count and the CPU kernel path are
    tagged on `run`, so a rebuild can be made the same way. Settings are restored afterwards."""
    import os
    import random

    import numpy as np
    import torch
    import torch.utils.deterministic as torch_deterministic

    n = threads or (DETERMINISTIC_THREADS if deterministic else None)
    previous = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads())
    fill = torch_deterministic.fill_uninitialized_memory
    cudnn = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    if deterministic:
        # cuBLAS is deterministic only with a fixed workspace; read when CUDA first starts
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        # NaN-filling every torch.empty costs time and changes no result of a correct program
        torch_deterministic.fill_uninitialized_memory = False
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
    set_threads(n)
    record(
        run,
        deterministic=deterministic,
        threads=torch.get_num_threads(),
        cpu_kernels=cpu_kernels(),
    )
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch_deterministic.fill_uninitialized_memory = fill
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = cudnn
        torch.set_num_threads(previous[1])


def cpu_kernels() -> str:
    """The CPU kernel path of this process, e.g. `aten=AVX2,onednn=auto`: ATen's vector
    kernels and oneDNN's ISA cap (its env var; auto is the best the CPU has). fp32 results
    differ in their last bits between AVX2 and AVX-512 kernels, so a rebuild on another CPU
    picks the recorded path (`reprolab reproduce`)."""
    import os

    import torch

    onednn = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    return f"aten={torch.backends.cpu.get_cpu_capability()},onednn={onednn or 'auto'}"


def reproducible_fit(fit: Callable) -> Callable:
    """A torch family's `fit(train, valid, run)` run under `reproducible`, as its params
    (`deterministic`, `threads`) and the model's seed ask."""

    @functools.wraps(fit)
    def wrapper(self, train: Any, valid: Any, run: Any = None):
        p = self.params
        with reproducible(p.deterministic, p.threads, self.seed, run):
            return fit(self, train, valid, run)

    return wrapper


def device() -> str:
    """ "cuda" when a CUDA device is usable, else "cpu" (a clean capability check)."""
    return resolve_device("auto")


def resolve_device(choice: str = "auto") -> str:
    """ "cpu" or "cuda" for a `device` param: auto takes CUDA when torch can use it; cuda
    where it cannot is refused in one line rather than failing deep inside a step."""
    import torch

    if choice == "cpu":
        return "cpu"
    usable = torch.cuda.is_available()
    if choice == "cuda" and not usable:
        from reprolab.core.errors import DataError

        raise DataError(
            f"device: cuda asked, but no CUDA device is usable here (torch {torch.__version__});"
            " use auto or cpu"
        )
    return "cuda" if usable else "cpu"


def cpu_bf16_native() -> tuple[bool, bool]:
    """(AVX512-BF16, AMX) on this CPU: without either, bf16 is emulated and slower than fp32."""
    import torch

    def probe(name: str) -> bool:
        found = getattr(torch.cpu, name, None)
        return bool(found()) if callable(found) else False

    return probe("_is_avx512_bf16_supported"), probe("_is_amx_tile_supported")


def bf16_native(device: str) -> bool:
    """Whether `device` computes bf16 natively (so autocast to it is a speed-up)."""
    if device == "cuda":
        import torch

        return torch.cuda.is_bf16_supported()
    return any(cpu_bf16_native())


def resolve_bf16(choice: bool | str, device: str) -> bool:
    """A `bf16` param as a bool: auto follows the hardware, true/false are kept as given."""
    return bf16_native(device) if choice == "auto" else bool(choice)


def autocast(device: str, enabled: bool):
    """bf16 autocast on `device` ("cpu"/"cuda"); disabled, plain fp32."""
    import torch

    return torch.autocast(device, dtype=torch.bfloat16, enabled=enabled)


def module_device(module: Any) -> str:
    """Where a module's weights are ("cpu" for one without any)."""
    first = next(module.parameters(), None)
    return "cpu" if first is None else first.device.type


def record(run: Any, **tags: Any) -> None:
    """Tags on the MLflow run when there is one (an HPO trial's logger has no tags)."""
    if run is not None and hasattr(run, "set_tags"):
        run.set_tags({key: _text(value) for key, value in tags.items()})


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
