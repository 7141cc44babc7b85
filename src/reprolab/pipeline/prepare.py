"""prepare@<dataset>: fetch (or mirror) → validate → split → data/processed/<dataset>/."""

from __future__ import annotations

from reprolab import data
from reprolab.io import atomic_dir
from reprolab.layout import processed_dir, raw_dir
from reprolab.params import Params
from reprolab.paths import data_mirror


def prepare(name: str, params: Params) -> dict:
    spec = params.datasets[name]
    module = data.module_for(spec.kind)
    with atomic_dir(processed_dir(name)) as staging:
        return module.prepare(spec, params.seed, raw_dir(name), staging, data_mirror())
