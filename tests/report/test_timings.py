"""The report's time table, read from the timings.json files the runs leave."""

from __future__ import annotations

import json

from reprolab.core.document import Document
from reprolab.params import parse_params
from reprolab.report import timings

PARAMS = {
    "datasets": {"wine": {"workload": "wine", "kind": "wine"}},
    "models": {
        name: {"dataset": "wine", "task": "wine-quality", "workload": "wine", "kind": kind}
        for name, kind in (("wine-rf", "random_forest"), ("wine-ridge", "ridge"))
    },
    "registry": {"wine-quality": {"metric": "rmse", "direction": "minimize", "threshold": 1.0}},
}


def _write(path, data) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "timings.json").write_text(json.dumps(data))


def test_each_timed_stage_is_a_row_longest_first_with_the_total(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = parse_params(PARAMS)
    _write(tmp_path / "reports/train/wine-rf", {"stage_seconds": 300.0, "fit_seconds": 280.0})
    _write(tmp_path / "reports/eval/wine-quality/wine-rf", {"stage_seconds": 6.0})
    _write(tmp_path / "reports/train/wine-ridge", {"stage_seconds": 4.0, "fit_seconds": 0.5})
    # wine-ridge was never evaluated here: no row for it, no error

    assert timings.stage_times(params) == [
        ("train@wine-rf", 300.0, 280.0),
        ("evaluate@wine-rf", 6.0, None),
        ("train@wine-ridge", 4.0, 0.5),
    ]
    doc = Document("t")
    timings.section(doc, params)
    markdown = doc.to_markdown(base=tmp_path)
    rows = [line for line in markdown.splitlines() if line.startswith("| train@")]
    assert rows[0].startswith("| train@wine-rf | 5.0 min | 4.7 min | 97%")
    assert "3 timed stages, 5.2 min in all" in markdown


def test_no_timings_no_section(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    doc = Document("t")
    timings.section(doc, parse_params(PARAMS))
    assert "Time per stage" not in doc.to_markdown(base=tmp_path)
