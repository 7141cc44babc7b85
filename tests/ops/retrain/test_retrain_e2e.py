"""`reprolab retrain` end to end on the wine workload in a throw-away repository: data drops
as DVC-tracked versions, the gate on the validation split, drift, and the messages a real
loopback webhook receives."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml

from reprolab.ops import sandbox

pytestmark = pytest.mark.slow

WINE = ("winequality-red.csv", "winequality-white.csv")


def drop(mirror, dest, rows: int | None = None, bad_cell: tuple[int, str] | None = None):
    """A drop laid out like the mirror: the first `rows` wines of each colour (all: None);
    `bad_cell` = (row, text) puts text in the red file's alcohol column at that row."""
    folder = dest / "wine-quality"
    folder.mkdir(parents=True)
    for name in WINE:
        lines = (mirror / "wine-quality" / name).read_text().splitlines()
        body = lines[1:] if rows is None else lines[1 : rows + 1]
        if bad_cell and name == WINE[0]:
            row, text = bad_cell
            cells = body[row - 1].split(";")
            cells[10] = text  # alcohol
            body[row - 1] = ";".join(cells)
        (folder / name).write_text("\n".join([lines[0], *body]) + "\n")
    return dest


@pytest.fixture
def repo(tmp_path):
    from tests.conftest import _mirror, sandbox_runner

    mirror = _mirror()
    if mirror is None:
        pytest.skip("no dataset mirror: set REPROLAB_DATA_MIRROR")
    gate = {"registry.wine-quality.threshold": 5.0, "registry.wine-quality.min_improvement": 0.005}
    root = sandbox.create(tmp_path / "repo", gate, models=["wine-ridge"])
    return root, sandbox_runner(root, mirror), mirror


def versions(root) -> dict[str, str]:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    return {
        str(v.version): v.tags.get("reprolab.status", "")
        for v in client.search_model_versions("name='wine-quality'")
    }


def test_retrain_promotes_a_better_drop_keeps_a_worse_one_and_refuses_a_corrupt_one(
    repo, tmp_path, httpserver
):
    root, run, mirror = repo
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    hook = httpserver.url_for("/hook")
    retrain = ["reprolab", "retrain", "wine-quality", "--commit", "--notify", hook]

    def posted() -> str:
        body = json.loads(httpserver.log[-1][0].get_data(as_text=True))
        return body["text"]

    # a small first drop: the first champion
    out = run(*retrain, "--data", str(drop(mirror, tmp_path / "small", rows=150))).stdout
    assert "new champion" in out and versions(root) == {"1": "champion"}
    assert (root / "data/drops/wine.dvc").is_file()
    pinned = yaml.safe_load((root / "params.yaml").read_text())["datasets"]["wine"]["drop"]
    assert pinned["path"] == "data/drops/wine" and pinned["md5"].endswith(".dir")
    branch = run("git", "branch", "--show-current").stdout.strip()
    assert branch.startswith("retrain/wine-quality/")
    log = run("git", "log", "--format=%s", "-3").stdout.splitlines()
    assert log[0].startswith("Retrain wine-quality: results (promoted, champion v1)")
    assert log[1].startswith("Retrain wine-quality: data drop ")
    assert run("git", "status", "--porcelain").stdout == ""  # data, params, lock, reports

    # every wine: better on the new validation split than the champion scored on it
    out = run(*retrain, "--data", str(drop(mirror, tmp_path / "full"))).stdout
    assert versions(root) == {"1": "archive", "2": "champion"}
    text = posted()
    assert "new champion" in text
    old_on_new = re.search(r"champion v1 \(wine-ridge, valid rmse=(\S+) on the new data, ", text)
    new_score = re.search(r"-> v2 \(wine-ridge, valid rmse=(\S+)\)", text)
    assert old_on_new and new_score and float(new_score[1]) < float(old_on_new[1]), text
    assert "champion v1 scored on v2's data" in text, out  # compared on the same examples
    assert "drift:" in text and "PSI" in text

    # a few wines: the new model is worse than predicting the mean; the champion stays
    run(*retrain, "--data", str(drop(mirror, tmp_path / "few", rows=40)))
    assert versions(root)["2"] == "champion" and versions(root)["3"] != "champion"
    text = posted()
    assert "champion kept" in text and "champion stays v2" in text
    assert re.search(r"v3: eval_valid_rmse=\S+ does not beat the baseline mean predictor", text)

    # a corrupt drop: one line naming file and row, nothing registered, a failure message
    before = (root / "params.yaml").read_text()
    bad = drop(mirror, tmp_path / "bad", bad_cell=(7, "twelve"))
    failed = run(*retrain, "--data", str(bad), check=False)
    assert failed.returncode == 1
    error = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert error == [
        f"error: {bad}/wine-quality/winequality-red.csv: row 7 (line 8), column 'alcohol': "
        "not a number: 'twelve'"
    ]
    assert set(versions(root)) == {"1", "2", "3"}
    assert (root / "params.yaml").read_text() == before
    assert "FAILED* in validate" in posted() and "row 7" in posted()


def test_a_second_retrain_is_refused_while_one_runs(repo):
    root, run, _ = repo
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from reprolab.ops.retrain.lock import one_at_a_time\n"
            "with one_at_a_time('wine-quality'):\n"
            "    print('held', flush=True); time.sleep(60)",
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        refused = run("reprolab", "retrain", "wine-quality", check=False)
        assert refused.returncode == 1
        assert f"another retrain is running: wine-quality (pid {holder.pid}, since" in (
            refused.stderr
        )
    finally:
        holder.kill()
        holder.wait()
