"""`reprolab doctor`: what this machine can run, one line per check, before a long run fails
on it. Python, torch, the MLflow store and disk are required (exit 1 when one fails);
accelerators, bitsandbytes, the DVC remote and the data mirror are informational (warn)."""

from __future__ import annotations

import os
import platform
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

OK, WARN, FAIL = "ok", "warn", "FAIL"
MIN_FREE_GIB = 2.0  # below: FAIL (a pipeline run writes models, caches, MLflow artifacts)
LOW_FREE_GIB = 10.0  # below: warn
GIB = 1024**3


@dataclass(frozen=True)
class Check:
    status: str
    name: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<4}  {self.name:<13} {self.detail}"


def python() -> tuple[str, str]:
    version = platform.python_version()
    supported = (3, 11) <= sys.version_info[:2] < (3, 13)
    return (OK if supported else FAIL), f"{version} ({sys.executable})" + (
        "" if supported else ": reprolab needs >=3.11,<3.13"
    )


def torch_build() -> tuple[str, str]:
    import torch

    if torch.version.cuda:
        build = f"CUDA {torch.version.cuda} build"
    elif getattr(torch.version, "hip", None):
        build = f"ROCm {torch.version.hip} build"
    else:
        build = "CPU build"
    return OK, f"{torch.__version__} ({build}), {torch.get_num_threads()} threads"


def cuda() -> tuple[str, str]:
    import torch

    if not torch.cuda.is_available():
        why = "no CUDA device visible" if torch.version.cuda else "CPU build of torch"
        return WARN, f"not available ({why}); `make setup-gpu` on a GPU machine (docs/gpu.md)"
    devices = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        free, total = torch.cuda.mem_get_info(i)
        with torch.cuda.device(i):
            bf16 = "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "no bf16"
        devices.append(
            f"{i}: {props.name}, sm_{props.major}{props.minor}, {bf16}, "
            f"{free / GIB:.1f}/{total / GIB:.1f} GiB free"
        )
    return OK, "; ".join(devices)


def cpu_bf16() -> tuple[str, str]:
    """Native bf16 on the CPU (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slower."""
    from reprolab.core.train.setup import cpu_bf16_native

    avx, amx = cpu_bf16_native()
    detail = f"avx512_bf16 {'yes' if avx else 'no'}, amx {'yes' if amx else 'no'}"
    if avx or amx:
        return OK, detail
    return WARN, f"{detail}: bf16 is emulated on this CPU, fp32 is faster"


def bitsandbytes() -> tuple[str, str]:
    import logging

    quiet = logging.getLogger("bitsandbytes")  # its import warns about optional CPU kernels
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        import bitsandbytes as bnb
        from bitsandbytes import cextension
    except Exception as err:  # a broken native library raises anything
        return WARN, f"not importable ({_first_line(err)}): no 4-bit NF4 (QLoRA)"
    finally:
        quiet.setLevel(level)
    backend = getattr(cextension, "BNB_BACKEND", "?")
    cuda_lib = getattr(cextension, "CudaBNBNativeLibrary", None)
    native = cuda_lib is not None and isinstance(getattr(cextension, "lib", None), cuda_lib)
    detail = f"{bnb.__version__}, backend {backend}"
    if native:
        return OK, f"{detail}, CUDA library loaded"
    return WARN, f"{detail}: no CUDA support here (4-bit NF4 runs on the CPU, slowly)"


def mps() -> tuple[str, str]:
    import torch

    backend = getattr(torch.backends, "mps", None)
    if backend is not None and backend.is_available():
        return OK, "available (Apple GPU)"
    return WARN, "not available" + ("" if sys.platform == "darwin" else " (macOS only)")


def disk(root: Path) -> tuple[str, str]:
    free = shutil.disk_usage(root).free / GIB
    detail = f"{free:.1f} GiB free at {root}"
    if free < MIN_FREE_GIB:
        return FAIL, f"{detail}: need at least {MIN_FREE_GIB:.0f} GiB"
    return (WARN if free < LOW_FREE_GIB else OK), detail


def dvc_remote(root: Path) -> tuple[str, str]:
    from dvc.config import Config

    from reprolab.ops.remote import RemoteError, check, load_s3

    config = Config(dvc_dir=str(root / ".dvc"), validate=False)
    name = config.get("core", {}).get("remote")
    if not name:
        return WARN, "no default remote (`make remote-s3 BUCKET=...`, docs/scale-out.md)"
    url = config.get("remote", {}).get(name, {}).get("url", "")
    if "://" not in url:  # a local folder, relative to .dvc/
        folder = (root / ".dvc" / url).resolve()
        if folder.is_dir():
            return OK, f"'{name}' {folder} (local folder)"
        return WARN, f"'{name}' {folder}: no such folder yet (`dvc push` creates it)"
    if not url.startswith("s3://"):
        return OK, f"'{name}' {url} (not probed)"
    try:
        return OK, check(load_s3(root, name), timeout=5.0)
    except RemoteError as err:
        return WARN, _first_line(err)


def mlflow_store() -> tuple[str, str]:
    from reprolab.core.paths import mlflow_tracking_uri
    from reprolab.core.tracking_store import sqlite_path, unreachable

    uri = mlflow_tracking_uri()
    db = sqlite_path(uri)
    if db is not None and not db.is_file():
        if os.access(db.parent, os.W_OK):
            return OK, f"{uri} (created by the first run)"
        return FAIL, f"{uri}: {db.parent} is not writable"
    # one quick attempt: an unreachable server fails in seconds, not after minutes of retries
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    import mlflow

    try:
        experiments = mlflow.MlflowClient(tracking_uri=uri).search_experiments(max_results=1000)
    except Exception as err:
        if unreachable(err):
            return FAIL, f"{uri}: unreachable (is the server up? MLFLOW_TRACKING_URI)"
        return FAIL, f"{uri}: {_first_line(err)}"
    count = len(experiments)
    return OK, f"{uri} ({count} experiment{'s' * (count != 1)})"


def data_mirror() -> tuple[str, str]:
    from reprolab.core.paths import data_mirror as mirror

    found = mirror()
    if found is None:
        return OK, "REPROLAB_DATA_MIRROR unset: datasets download from upstream"
    if not found.is_dir():
        return WARN, f"REPROLAB_DATA_MIRROR={found}: not a directory"
    names = sorted(p.name for p in found.iterdir() if p.is_dir())
    return OK, f"{found}: {', '.join(names) or 'empty'}"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


def checks(root: Path) -> list[tuple[str, bool, Callable[[], tuple[str, str]]]]:
    """(name, required, check) in the order they are printed."""
    return [
        ("python", True, python),
        ("torch", True, torch_build),
        ("cuda", False, cuda),
        ("cpu-bf16", False, cpu_bf16),
        ("bitsandbytes", False, bitsandbytes),
        ("mps", False, mps),
        ("disk", True, lambda: disk(root)),
        ("dvc-remote", False, lambda: dvc_remote(root)),
        ("mlflow-store", True, mlflow_store),
        ("data-mirror", False, data_mirror),
    ]


def run(root: Path, echo: Callable[[str], None] = print) -> int:
    """Print one line per check as it finishes; 1 if a required check failed, else 0."""
    failed = False
    for name, required, check in checks(root):
        try:
            status, detail = check()
        except Exception as err:  # each check reports its own failure, the next still runs
            status, detail = (FAIL if required else WARN), _first_line(err)
        if status == FAIL and not required:
            status = WARN
        failed |= status == FAIL
        echo(Check(status, name, detail).line())
    return 1 if failed else 0
