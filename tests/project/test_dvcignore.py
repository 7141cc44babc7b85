"""Bytecode beside the sources is not code a stage depends on: where Python writes
__pycache__ (PYTHONDONTWRITEBYTECODE unset), `dvc status` must still see every stage's code
as unchanged, or `make` after `make test` would rerun the whole pipeline."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_dvc_ignores_bytecode():
    result = subprocess.run(
        ["dvc", "check-ignore", "src/reprolab/core/__pycache__/metrics.cpython-311.pyc"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"not ignored: {result.stdout}{result.stderr}"
