"""PIDNet end to end on a tiny control dataset: prepare, train through the simulation,
save as an MLflow pyfunc, reload, score with the baselines, and `reprolab pid`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from reprolab import workloads
from reprolab.core import saving
from reprolab.core.errors import ParamsError
from reprolab.params import parse_params
from reprolab.workloads.control import data as control
from reprolab.workloads.control.params import ControlDataset
from tests.conftest import REPO
from tests.tiny_models import TINY_CONTROL, TaggedRun, cpu_run_tags, pidnet_params

TINY = ControlDataset(**TINY_CONTROL)


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("control")
    summary = control.prepare(TINY, 7, root / "raw", root / "out", None)
    assert sum(summary["rows"].values()) == 24
    return tuple(control.load_split(root / "out", s) for s in ("train", "valid", "test"))


def test_prepare_is_deterministic_and_features_are_finite(splits, tmp_path):
    control.prepare(TINY, 7, tmp_path / "raw", tmp_path / "out", None)
    again = control.load_split(tmp_path / "out", "test")
    pd.testing.assert_frame_equal(again.X, splits[2].X)
    assert np.isfinite(splits[0].X.to_numpy()).all()


def test_pidnet_trains_saves_reloads_and_scores_against_baselines(splits, tmp_path):
    train, valid, test = splits
    run = TaggedRun()
    model = workloads.build(pidnet_params(epochs=4), 0).fit(train, valid, run)
    assert [s for s, _ in run.steps] == [1, 2, 3, 4]
    assert all(np.isfinite(m["valid_iae"]) for _, m in run.steps)
    gains = model.predict(test.X)
    assert list(gains.columns) == ["kp", "ki", "kd"] and (gains.to_numpy() > 0).all()

    model.save(tmp_path / "m", input_example=test.X.head(2))
    reloaded = saving.load_predictor(tmp_path / "m").predict(test.X)
    np.testing.assert_allclose(reloaded.to_numpy(), gains.to_numpy())
    score = test.score(reloaded)
    assert {"iae", "ise", "overshoot", "settling_time", "effort", "zn", "simc"} <= set(score)
    assert score["iae_vs_zn"] == pytest.approx(score["iae"] / score["zn"]["iae"] - 1)
    frame = test.prediction_table(reloaded)
    assert len(frame) == len(test.plants)
    assert {"actual", "predicted", "kp", "zn_iae"} <= set(frame.columns)


def test_pidnet_trains_on_the_device_asked(splits):
    train, valid, test = splits
    run = TaggedRun()
    model = workloads.build(pidnet_params(device="cpu"), 0).fit(train, valid, run)
    assert run.tags == cpu_run_tags(2)
    assert next(model.module.parameters()).device.type == "cpu"
    assert (model.predict(test.X).to_numpy() > 0).all()


def test_control_params_errors_name_the_key():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["datasets"]["control"]["time_constant"] = [-1.0, 3.0]
    with pytest.raises(ParamsError, match=r"datasets\.control\.time_constant: must be > 0"):
        parse_params(raw)
    raw["datasets"]["control"]["time_constant"] = [1.0, 3.0]
    raw["datasets"]["control"]["delay"] = [0.5, 90.0]
    with pytest.raises(ParamsError, match=r"delay: 90\.0 is not shorter than the setpoint"):
        parse_params(raw)


def test_pid_command_gives_gains_response_and_plot(splits, tmp_path, monkeypatch):
    from reprolab.cli import main

    train, valid, test = splits
    model = workloads.build(pidnet_params(epochs=2), 0).fit(train, valid, None)
    model.save(tmp_path / "m", test.X.head(2))
    plant = tmp_path / "plant.yaml"
    plant.write_text("kind: fopdt\ngain: 1.5\ndelay: 0.8\ntime_constant: 4.0\n")
    repo_params = REPO / "params.yaml"
    out = tmp_path / "out"
    args = ["pid", "--plant", str(plant), "--model", str(tmp_path / "m"), "--out", str(out)]
    done = CliRunner().invoke(main, [*args, "--params", str(repo_params)])
    assert done.exit_code == 0, done.output
    assert "ziegler_nichols" in done.output
    summary = json.loads((out / "fopdt-response.json").read_text())
    assert set(summary["gains"]) == {"pidnet", "ziegler_nichols", "simc"}
    assert (out / "fopdt-response.png").stat().st_size > 10_000

    plant.write_text("kind: fopdt\ngain: 1.5\ndelay: 0.8\ntime_constant: -4.0\n")
    bad = CliRunner().invoke(main, [*args, "--params", str(repo_params)])
    assert bad.exit_code == 1
    assert "plant.time_constant: must be > 0, got -4.0" in bad.output


def test_a_setpoint_weight_travels_from_the_net_to_the_loop_and_the_cli(splits, tmp_path):
    train, valid, test = splits
    model = workloads.build(pidnet_params(epochs=2, setpoint_weight=True), 0).fit(train, valid)
    gains = model.predict(test.X)
    assert list(gains.columns) == ["kp", "ki", "kd", "b"]
    assert ((gains["b"] > 0) & (gains["b"] < 1)).all()
    model.save(tmp_path / "m", input_example=test.X.head(2))
    reloaded = saving.load_predictor(tmp_path / "m").predict(test.X)
    np.testing.assert_allclose(reloaded.to_numpy(), gains.to_numpy())
    assert "b" in test.prediction_table(reloaded).columns
    # the loop scored with b differs from the same gains with b = 1
    assert test.score(reloaded)["iae"] != test.score(reloaded[["kp", "ki", "kd"]])["iae"]
    assert control.weighted(reloaded[["kp", "ki", "kd"]])[:, 3].tolist() == [1.0] * len(test.X)


def test_a_weight_of_one_is_the_classic_pid_bit_for_bit(splits):
    import torch

    from reprolab.workloads.control import simulate

    test = splits[2]
    batch = test.batch()
    three = torch.tensor([[1.0, 0.3, 0.2]] * len(test.plants), dtype=torch.float64)
    four = torch.cat([three, torch.ones(len(test.plants), 1, dtype=torch.float64)], 1)
    a, b = simulate.closed_loop(batch, three), simulate.closed_loop(batch, four)
    assert torch.equal(a.y, b.y) and torch.equal(a.u, b.u)
    lower = simulate.closed_loop(batch, torch.cat([three, four[:, 3:] * 0.3], 1))
    assert lower.y[:, :20].max() < a.y[:, :20].max()  # a gentler start on the setpoint step
