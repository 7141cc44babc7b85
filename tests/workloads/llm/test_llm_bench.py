"""make bench-llm on a tiny model: every precision runs (or says why not), the JSON, the plot
and the printed table are there."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

pytest.importorskip("torch")

from reprolab.workloads.llm import bench as bench
from tests.workloads.llm import tiny


def test_bench_tiny(tmp_path):
    # >= 32 outputs per projection: bitsandbytes' CPU inference layout packs 32 rows at a time
    base = tiny.save_base(tmp_path / "base", hidden_size=64, num_key_value_heads=4)
    out = tmp_path / "bench"
    args = ["--model", f"tiny={base}", "--model", f"again={base}", "--new-tokens", "3"]
    args += ["--batch", "1", "--batch", "4", "--threads", "2", "--out", str(out)]
    result = CliRunner().invoke(bench.main, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "llm.json").read_text())
    assert (out / "llm.png").stat().st_size > 1000
    rows = {(r["model"], r["precision"]): r for r in report["results"]}
    assert set(rows) == {(m, p) for m in ("tiny", "again") for p in ("fp32", "bf16", "nf4")}
    fp32 = rows[("tiny", "fp32")]
    assert fp32["ttft_ms"] > 0 and fp32["tokens_per_s_b4"] > 0 and fp32["load_s"] > 0
    assert rows[("tiny", "bf16")]["weights_mb"] < fp32["weights_mb"]
    if "skipped" not in rows[("tiny", "nf4")]:
        assert rows[("tiny", "nf4")]["weights_mb"] < rows[("tiny", "bf16")]["weights_mb"]
    assert "tok/s b4" in result.output and "tiny | fp32" in result.output


def test_bench_missing_model(tmp_path):
    result = CliRunner().invoke(bench.main, ["--model", f"x={tmp_path / 'nope'}"])
    assert result.exit_code != 0 and "model directory not found" in result.output
