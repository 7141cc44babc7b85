"""Datasets: one module per dataset (fetch → validate → split → write), and a registry of
kinds so that stages never branch on the dataset."""

from __future__ import annotations

import importlib
from types import ModuleType

# kind -> module implementing `prepare(name, params, seed, raw_dir, out_dir, mirror)` and
# `load_split(out_dir, split)`
_KINDS = {
    "wine": "reprolab.data.wine",
    "nsmc": "reprolab.data.nsmc",
    "nuclei": "reprolab.data.nuclei",
    "control": "reprolab.data.control",
    "shakespeare": "reprolab.data.shakespeare",
    "instructions": "reprolab.data.instructions",
}


def module_for(kind: str) -> ModuleType:
    return importlib.import_module(_KINDS[kind])
