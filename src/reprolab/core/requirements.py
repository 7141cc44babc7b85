"""Explicit pip requirements for logged models. MLflow's own inference takes ~10 s a model
here and lists torch for scikit-learn models; the installed versions are exact and instant.

Each family lists what its saved model needs to load and predict where reprolab is not
installed (the wrapper code travels inside the model, see reprolab.workloads.save_pyfunc)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib.metadata import version
from pathlib import Path

# every pyfunc: MLflow itself (recorded explicitly, as MLflow would add it), frames in and out
PYFUNC = ("mlflow", "numpy", "pandas")
# mlflow.sklearn in skops format: the estimator's own stack plus the skops loader
SKLEARN = (*PYFUNC, "scikit-learn", "scipy", "skops")
# our torch wrappers (reprolab.core.torch_pyfunc); a family adds what its predict decodes
TORCH = (*PYFUNC, "torch")

PROJECT = "reprolab"


def pins(*packages: str) -> list[str]:
    """`name==version` of each installed distribution, in order, once each. Local tags such
    as torch's `+cpu` are dropped: `torch==2.13.0` also matches the CPU build wherever pip's
    indexes offer it, and a tagged pin would match nothing on a plain index."""
    seen: dict[str, str] = {}
    for name in packages:
        seen.setdefault(canonical(name), f"{name}=={version(name).split('+')[0]}")
    return list(seen.values())


def canonical(requirement: str) -> str:
    """The normalised project name of a requirement line (PEP 503)."""
    return _parts(requirement)[0]


def _parts(requirement: str) -> tuple[str, str]:
    """(normalised name, the rest of the line without blanks): equal parts, equal needs."""
    text = requirement.strip()
    name = re.split(r"[\s<>=!~;\[@]", text, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower(), "".join(text[len(name) :].split())


def union(*groups: Iterable[str]) -> list[str]:
    """One requirement list from several (an ensemble's members): sorted, each project once;
    two different needs for one project are a conflict the model could not be installed with."""
    merged: dict[str, tuple[str, str]] = {}
    for line in (x.strip() for group in groups for x in group):
        if not line or line.startswith("#"):
            continue
        name, spec = _parts(line)
        first = merged.setdefault(name, (line, spec))
        if first[1] != spec:
            raise ValueError(f"conflicting requirements for {name}: {first[0]!r}, {line!r}")
    return [merged[name][0] for name in sorted(merged)]


def read(model_dir: str | Path) -> list[str]:
    """The requirement lines of a saved MLflow model directory (empty when it has none)."""
    f = Path(model_dir) / "requirements.txt"
    return [x.strip() for x in f.read_text().splitlines() if x.strip()] if f.is_file() else []


def check_portable(requirements: Iterable[str] | None) -> None:
    """A saved model must install without the project: its code travels with it instead."""
    if isinstance(requirements, str):  # MLflow also takes a requirements file's path
        requirements = [requirements]
    named = [r for r in requirements or () if canonical(r) == PROJECT]
    if named:
        raise ValueError(f"model requirements must not name {PROJECT} (its code travels): {named}")
