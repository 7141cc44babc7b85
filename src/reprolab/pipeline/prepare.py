"""prepare@<dataset>: fetch (or mirror, or a retrain's data drop) → validate → split →
data/processed/<dataset>/."""

from __future__ import annotations

from reprolab import workloads
from reprolab.core.fetch import open_drop
from reprolab.core.io import atomic_dir
from reprolab.core.layout import processed_dir, raw_dir
from reprolab.core.paths import data_mirror
from reprolab.params import Params


def prepare(name: str, params: Params) -> dict:
    spec = params.datasets[name]
    module = workloads.data_module(spec)
    source = data_mirror()
    if spec.drop is not None:
        source = open_drop(spec.drop.path, spec.drop.md5, f"datasets.{name}.drop")
    with atomic_dir(processed_dir(name)) as staging:
        return module.prepare(spec, params.seed, raw_dir(name), staging, source)
