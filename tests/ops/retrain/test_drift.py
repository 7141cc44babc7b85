"""PSI and the drift summary: the same data is stable, a shifted column is named first."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reprolab.ops.retrain import drift


def test_psi_is_zero_for_the_same_sample_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    sample = rng.normal(size=5000)
    assert drift.psi(sample, sample) == 0.0
    assert drift.psi(sample, rng.normal(size=5000)) < drift.MODERATE
    assert drift.psi(sample, rng.normal(1.0, 1.0, size=5000)) > drift.LARGE
    assert drift.psi(np.ones(10), np.ones(10)) == 0.0  # a constant column


def test_the_summary_names_the_most_shifted_columns_with_their_means_and_shares():
    rng = np.random.default_rng(1)
    before = pd.DataFrame(
        {"alcohol": rng.normal(10, 1, 2000), "pH": rng.normal(3.2, 0.1, 2000), "color": "red"}
    )
    after = before.assign(alcohol=before["alcohol"] + 1.5, color=["red", "white"] * 1000)
    report = drift.compare(before, after)
    assert report["level"] == "large" and report["columns"]["pH"]["level"] == "stable"
    lines = drift.summary_lines(report, top=2)
    assert lines[0].startswith("drift: large (2000 -> 2000 train rows")
    assert {lines[1].split(":")[0].strip(), lines[2].split(":")[0].strip()} == {"alcohol", "color"}
    assert "shares {'red': 1.0} -> {'red': 0.5, 'white': 0.5}" in "\n".join(lines)
    assert drift.summary_lines({"note": "drift: not measured (why)"}) == [
        "drift: not measured (why)"
    ]
