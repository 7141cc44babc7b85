"""infer@ reads files only through a workload data module that implements PredictsFromFiles;
a workload without one gets a single line naming the infer entry, before any model loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reprolab import workloads
from reprolab.core.errors import DataError
from reprolab.core.split import PredictsFromFiles
from reprolab.params import parse_params
from reprolab.pipeline.infer import infer

VALID = Path(__file__).parent / "params/valid.yaml"


def test_data_modules_that_read_files_satisfy_the_protocol():
    params = parse_params(yaml.safe_load(VALID.read_text()))
    assert not isinstance(workloads.data_module(params.datasets["control"]), PredictsFromFiles)
    from reprolab.workloads.wine import data as wine_data

    assert isinstance(wine_data, PredictsFromFiles)


def test_infer_refuses_a_workload_that_does_not_predict_from_files():
    raw = yaml.safe_load(VALID.read_text())
    raw["infer"] = {
        "pid-control": {"workload": "control", "dataset": "control", "input": "plants.csv"}
    }
    with pytest.raises(DataError, match=r"^infer\.pid-control: workload 'control' does not"):
        infer("pid-control", parse_params(raw))
