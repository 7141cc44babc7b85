"""Threads, device and precision, named the same in every family: `threads` caps torch's
intra-op threads (a shared machine is slower oversubscribed), `resolve_device` turns the
`device: auto|cpu|cuda` param into where to train, `resolve_bf16` the `bf16: auto|true|false`
param into whether to autocast, by what the hardware runs natively."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal

Device = Literal["auto", "cpu", "cuda"]
# true, false or auto (the hardware decides); one Literal so a bad value fails in one line
Bf16 = Literal[True, False, "auto"]


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
