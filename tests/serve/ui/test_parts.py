"""The page's parts without a browser: the login check, the wine defaults against the real
data, column names, and the experiments table from a `dvc exp show` answer."""

from __future__ import annotations

import pytest

from reprolab.serve.experiments import flatten, table
from reprolab.serve.settings import ServeSettings
from reprolab.serve.ui import login
from reprolab.serve.ui.common import describe, short
from reprolab.serve.ui.tabs.wine import MEDIANS
from reprolab.workloads.wine.data import INPUTS

SHOWN = [
    {
        "rev": "workspace",
        "name": None,
        "data": {
            "params": {"params.yaml": {"data": {"seed": 3, "models": {"m": {"lr": 0.1}}}}},
            "metrics": {"reports/eval/t/m/metrics.json": {"data": {"rmse": 0.5, "fit_seconds": 9}}},
        },
        "experiments": None,
    },
    {
        "rev": "f9c5062aaaa",
        "name": "main",
        "data": {
            "params": {"params.yaml": {"data": {"seed": 42, "models": {"m": {"lr": 0.1}}}}},
            "metrics": {"reports/eval/t/m/metrics.json": {"data": {"rmse": 0.7, "fit_seconds": 3}}},
        },
        "experiments": [
            {
                "name": "seed-1",
                "revs": [
                    {
                        "rev": "55eab83bbbb",
                        "name": "seed-1",
                        "data": {
                            "params": {
                                "params.yaml": {"data": {"seed": 1, "models": {"m": {"lr": 0.1}}}}
                            },
                            "metrics": {
                                "reports/eval/t/m/metrics.json": {"data": {"rmse": float("nan")}}
                            },
                        },
                    }
                ],
            }
        ],
    },
]


def test_login_needs_a_name_and_the_token():
    check = login("s3cret")
    assert check("ann", "s3cret")
    assert not check("ann", "s3cre") and not check("", "s3cret") and not check("  ", "s3cret")


def test_the_wine_defaults_are_the_medians_of_the_real_data():
    from tests.conftest import _mirror

    mirror = _mirror()
    if mirror is None:
        pytest.skip("no data mirror with wine-quality (REPROLAB_DATA_MIRROR)")
    folder = mirror / "wine-quality"
    import pandas as pd

    wines = pd.concat(
        [pd.read_csv(folder / f"winequality-{c}.csv", sep=";") for c in ("red", "white")]
    )
    assert list(MEDIANS) == INPUTS
    for name in INPUTS:
        assert MEDIANS[name] == pytest.approx(wines[name].median()), name


def test_the_experiments_table_keeps_what_differs_and_drops_timings(tmp_path, monkeypatch):
    rows = flatten(SHOWN)
    assert [r["name"] for r in rows] == ["workspace", "main", "seed-1"]
    assert (
        rows[1]["rev"] == "f9c5062"
        and rows[2]["metrics.reports/eval/t/m/metrics.json:rmse"] is None
    )
    from reprolab.serve import experiments

    monkeypatch.setattr(experiments, "exp_show", lambda repo, *page: SHOWN)
    shown = table(tmp_path)
    assert shown["params"] == ["params.seed"]  # models.m.lr is the same everywhere
    assert shown["metrics"] == ["metrics.reports/eval/t/m/metrics.json:rmse"]  # no fit_seconds
    assert shown["columns"][:2] == ["name", "rev"]


def test_column_names_are_shortened_for_people():
    assert short("metrics.reports/eval/wine-quality/wine-rf/metrics.json:rmse") == (
        "wine-quality/wine-rf:rmse"
    )
    assert short("metrics.reports/eval/t/m/valid.json:r2") == "t/m/valid:r2"
    assert short("params.models.wine-rf.n_estimators") == "models.wine-rf.n_estimators"


def test_the_served_line_names_version_model_alias_and_metric():
    state = {
        "task": "wine-quality",
        "alias": "champion",
        "version": "4",
        "model": "wine-mlp",
        "source": "models:/wine-quality/4",
        "metric": {"name": "rmse", "valid": 0.6632, "test": 0.6940},
        "ready": True,
        "error": None,
    }
    line = describe(state)
    assert "**v4** (wine-mlp, alias `champion`)" in line and "valid rmse 0.6632, test 0.694" in line
    fixed = describe({**state, "task": "minit", "alias": None, "source": "/m", "metric": None})
    assert "the model in `/m`" in fixed
    assert "still loading" in describe({**state, "ready": False})


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:8000"),
        ("::", "http://[::1]:8000"),
        ("10.1.2.3", "http://10.1.2.3:8000"),
    ],
)
def test_the_page_reaches_the_service_at_its_own_address(host, url):
    assert ServeSettings(host=host).loopback_url == url


def test_history_comes_a_page_of_commits_at_a_time(tmp_path):
    """Three commits, a page of one: each page holds its own commit's row, the last page
    says there is no next one, and a page past the end is empty, not an error."""
    import subprocess

    from reprolab.serve.experiments import Window
    from tests.serve.ui.conftest import dvc_repo_with_experiments

    (tmp_path / "params.yaml").write_text("seed: 0\n")
    dvc_repo_with_experiments(tmp_path)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for seed in (5, 7):
        (tmp_path / "params.yaml").write_text(f"seed: {seed}\n")
        subprocess.run([*git, "commit", "-qam", f"seed {seed}"], cwd=tmp_path, check=True)
    log = ["git", "rev-list", "--first-parent", "HEAD"]
    shas = subprocess.run(log, cwd=tmp_path, capture_output=True, text=True).stdout.split()

    first = table(tmp_path, Window(skip=0, commits=1))
    assert first["page"] == {"skip": 0, "commits": 1, "total_commits": 3, "next_skip": 1}
    assert shas[0][:7] in [r["rev"] for r in first["rows"]]
    last = table(tmp_path, Window(skip=2, commits=1))
    revs = [r["rev"] for r in last["rows"]]
    assert shas[2][:7] in revs and shas[0][:7] not in revs
    assert {"seed-1", "seed-3"} <= {r["name"] for r in last["rows"]}  # its experiments
    assert last["page"]["next_skip"] is None
    past = table(tmp_path, Window(skip=9, commits=5))
    assert past["rows"] == [] and past["page"]["next_skip"] is None
    assert table(tmp_path)["page"] is None  # HEAD only: no paging


def test_the_page_runs_several_of_each_event_at_once(params_file):
    """Gradio's default runs one of each event at a time (two people chatting would wait on
    each other); the page takes the service's setting, sized to the machine by default."""
    import os

    from fastapi import FastAPI

    from reprolab.params import load_params
    from reprolab.serve import ui
    from reprolab.serve.settings import ServeSettings

    params = load_params(params_file)
    workloads = {"wine-quality": "wine", "llm-sft": "llm"}
    for setting, expected in ((3, 3), (None, max(8, 4 * (os.cpu_count() or 1)))):
        settings = ServeSettings(ui_concurrency=setting, params_path=params_file)
        app = FastAPI()
        ui.mount(app, settings, params, workloads, ["minit"])
        blocks = next(r.app.get_blocks() for r in app.routes if getattr(r, "path", "") == "/ui")
        assert {fn.concurrency_limit for fn in blocks.fns.values()} == {"default"}
        assert blocks._queue.default_concurrency_limit == expected  # what "default" resolves to
