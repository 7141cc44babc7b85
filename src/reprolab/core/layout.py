"""Where each stage reads and writes, relative to the workspace. dvc.yaml declares the same
paths; keeping them in one module keeps the two in step."""

from __future__ import annotations

from pathlib import Path


def raw_dir(dataset: str) -> Path:
    return Path("data/raw") / dataset


def processed_dir(dataset: str) -> Path:
    return Path("data/processed") / dataset


def model_dir(model: str) -> Path:
    return Path("models") / model


def train_dir(model: str) -> Path:
    """dvclive directory of the train stage (metrics.json, plots/metrics/*.tsv) + run.json."""
    return Path("reports/train") / model


def eval_dir(task: str, model: str) -> Path:
    return Path("reports/eval") / task / model


def registry_file(task: str) -> Path:
    return Path("reports/registry") / f"{task}.json"


def champion_file(task: str) -> Path:
    """Who the champion is (version, model, run): what infer@<task> depends on, so a moved
    alias, by the pipeline or a person, makes the predictions stale."""
    return Path("reports/registry") / f"{task}.champion.json"


def predictions_file(task: str) -> Path:
    return Path("reports/predictions") / f"{task}.csv"


RUN_FILE = "run.json"  # in train_dir and eval_dir: MLflow run id and lineage of the model
# beside a run's dvclive metrics: its wall-clock measures, which differ on every run and so
# are kept out of the DVC metrics files (`dvc metrics diff` shows quality changes only)
TIMINGS_FILE = "timings.json"


def hpo_file(model: str) -> Path:
    """The study's report: best params and value, every trial (state, duration, error)."""
    return Path("reports/hpo") / f"{model}.json"


def hpo_dir(model: str) -> Path:
    """dvclive progress of the study, its plots, and best.json (what train applies)."""
    return Path("reports/hpo") / model


HPO_BEST = "best.json"
