"""Each workload's params fixtures: valid.yaml (the project's own entries of that workload)
validates, and every case of invalid.yaml fails with one line that names the changed key and
what was expected."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from reprolab.core.errors import ParamsError
from reprolab.params import parse_params, workloads

HERE = Path(__file__).parent


def _cases():
    for workload in workloads():
        for i, case in enumerate(
            yaml.safe_load((HERE / workload / "params/invalid.yaml").read_text())
        ):
            yield pytest.param(workload, case, id=f"{workload}-{i}")


def _valid(workload: str) -> dict:
    return yaml.safe_load((HERE / workload / "params/valid.yaml").read_text())


@pytest.mark.parametrize("workload", workloads())
def test_valid_fixture_validates_alone(workload):
    params = parse_params(_valid(workload))
    entries = [*params.datasets.values()]
    entries += [
        m
        for s in ("models", "pretrain", "imports", "finetune")
        for m in getattr(params, s).values()
    ]
    assert entries and {e.workload for e in entries} == {workload}


@pytest.mark.parametrize(("workload", "case"), list(_cases()))
def test_invalid_case_names_its_key(workload, case):
    raw = copy.deepcopy(_valid(workload))
    for dotted, value in case["set"].items():
        *parents, last = dotted.split(".")
        node = raw
        for part in parents:
            node = node[part]
        node[last] = value
    with pytest.raises(ParamsError) as err:
        parse_params(raw)
    assert case["error"] in str(err.value), str(err.value)
    assert all(line.startswith("params: ") for line in str(err.value).splitlines())
