"""check: the whole params.yaml, then what it points at on this machine (packages, files,
infer inputs), then the data sources every dataset will read, before any stage that owns
outputs runs (DVC deletes a stage's outputs before its command starts).

A data drop must still match the md5 pinned in params.yaml; a mirror's files must match the
sha256 pinned in their workload's code. Either check fails with one line naming the file;
new data comes in on purpose as a drop (`reprolab retrain`), never by a changed file."""

from __future__ import annotations

import tempfile
from pathlib import Path

from reprolab import workloads
from reprolab.core.errors import ParamsError, ReprolabError
from reprolab.core.fetch import open_drop, verify_mirror
from reprolab.core.layout import processed_dir
from reprolab.core.paths import data_mirror
from reprolab.params import MODEL_SECTIONS, Params

HEAD_BYTES = 64 * 1024  # an infer input is checked on its first rows, not read whole
SPLITS = ("train", "valid", "test")  # what prepare@<dataset> writes: <split>.<ext> or <split>/


def check_machine(params: Params, source: str = "params.yaml") -> None:
    """What params.yaml names outside itself must be there and readable: each entry's
    packages and files, and each infer input. ParamsError: one line per bad key."""
    problems = []
    for section in MODEL_SECTIONS:
        for name, spec in getattr(params, section).items():
            problems += [f"{section}.{name}.{line}" for line in spec.outside_problems()]
    for task in params.infer:
        problems += infer_input_problems(params, task)
    if problems:
        raise ParamsError("\n".join(f"{source}: {line}" for line in problems))


def infer_input_problems(params: Params, task: str) -> list[str]:
    """infer.<task>.input must be a file (or image folder) the workload reads, checked on its
    first rows; a split prepare@<dataset> will write may be absent before the first run."""
    spec = params.infer[task]
    where, path = f"infer.{task}.input", Path(spec.input)
    if not path.exists():
        if _written_by_prepare(path, spec.dataset):
            return []
        return [f"{where}: {path}: no such file or directory (nor a split prepare writes)"]
    module = workloads.data_module(params.datasets[spec.dataset])
    if not hasattr(module, "read_inputs"):
        return []  # the infer stage says the workload does not predict from files
    try:
        _read_head(module, path)
    except (ReprolabError, ValueError, KeyError, OSError) as err:
        return [f"{where}: {_first_line(err)}"]
    return []


def _written_by_prepare(path: Path, dataset: str) -> bool:
    """`data/processed/<dataset>/test.csv`, `.../test/images`: an output of prepare."""
    try:
        inside = path.relative_to(processed_dir(dataset))
    except ValueError:
        return False
    return bool(inside.parts) and Path(inside.parts[0]).stem in SPLITS


def _read_head(module, path: Path) -> None:
    """The workload's own reader on the file's first rows (a folder is read as it is)."""
    if path.is_dir():
        module.read_inputs(path)
        return
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
    if len(head) == HEAD_BYTES and b"\n" in head:
        head = head[: head.rindex(b"\n") + 1]  # whole rows only
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        copy.write_bytes(head)
        try:
            module.read_inputs(copy)
        except (ReprolabError, ValueError, KeyError, OSError) as err:
            raise type(err)(str(err).replace(str(copy), str(path))) from None


def _first_line(err: Exception) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:400]


def check_sources(params: Params) -> list[str]:
    """Verify each dataset's drop or mirror files; one line per dataset checked."""
    mirror = data_mirror()
    lines = []
    for name, spec in params.datasets.items():
        if spec.drop is not None:
            open_drop(spec.drop.path, spec.drop.md5, f"datasets.{name}.drop")
            lines.append(f"{name}: data drop {spec.drop.path} matches its md5")
            continue
        module = workloads.data_module(spec)
        if mirror is None or not hasattr(module, "source_files"):
            continue  # downloads are checked as they arrive; generated data has no files
        checked = verify_mirror(module.source_files(spec, mirror), mirror)
        if checked:
            lines.append(f"{name}: {checked} mirror file(s) match their pins")
    return lines
