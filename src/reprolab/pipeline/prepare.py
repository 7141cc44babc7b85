"""prepare@<dataset>: fetch (or mirror) → validate → split → data/processed/<dataset>/."""

from __future__ import annotations

from reprolab import workloads
from reprolab.core.io import atomic_dir
from reprolab.core.layout import processed_dir, raw_dir
from reprolab.core.paths import data_mirror
from reprolab.params import Params


def prepare(name: str, params: Params) -> dict:
    spec = params.datasets[name]
    module = workloads.data_module(spec)
    with atomic_dir(processed_dir(name)) as staging:
        return module.prepare(spec, params.seed, raw_dir(name), staging, data_mirror())
