"""check: the whole params.yaml, then the data sources every dataset will read, before any
stage that owns outputs runs (DVC deletes a stage's outputs before its command starts).

A data drop must still match the md5 pinned in params.yaml; a mirror's files must match the
sha256 pinned in their workload's code. Either check fails with one line naming the file;
new data comes in on purpose as a drop (`reprolab retrain`), never by a changed file."""

from __future__ import annotations

from reprolab import workloads
from reprolab.core.fetch import open_drop, verify_mirror
from reprolab.core.paths import data_mirror
from reprolab.params import Params


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
