"""CI runs what a checkout runs (make setup, lint, test) and pre-commit's ruff is the one
requirements.lock pins, so that a commit hook and CI never disagree."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _pin(name: str) -> str:
    lock = (REPO / "requirements.lock").read_text().splitlines()
    return next(line.split("==", 1)[1] for line in lock if line.startswith(f"{name}=="))


def test_ci_sets_up_lints_and_tests_with_make_on_python_311():
    job = yaml.safe_load((REPO / ".github/workflows/ci.yml").read_text())["jobs"]["test"]
    steps = job["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@")
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    assert python["with"]["python-version"] == "3.11"
    runs = [s["run"].split()[:2] for s in steps if "run" in s]
    assert runs == [["make", "setup"], ["make", "lint"], ["make", "test"]]


def test_pre_commit_ruff_matches_the_lock():
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    (ruff,) = [r for r in config["repos"] if r["repo"].endswith("/ruff-pre-commit")]
    assert ruff["rev"] == f"v{_pin('ruff')}"
    assert [h["id"] for h in ruff["hooks"]] == ["ruff", "ruff-format"]
