"""Lookups in the MLflow model registry that the registry modules share: the alias names, the
metric the gate reads, and versions by alias or number, with a RegistryError (not MLflow's)
when a task or version does not exist."""

from __future__ import annotations

from reprolab.core.errors import RegistryError
from reprolab.core.params import RegistryTask
from reprolab.core.tracking import TAG

CANDIDATE, CHAMPION, ARCHIVE = "candidate", "champion", "archive"


def metric_key(spec: RegistryTask, split: str = "valid") -> str:
    """The MLflow metric the gate reads: evaluate@'s score of the saved model. Not
    `valid_<metric>`, which training curves log per step (its latest value is the last step)."""
    return f"eval_valid_{spec.metric}" if split == "valid" else f"{split}_{spec.metric}"


def version_value(mv, spec: RegistryTask, split: str = "valid") -> float:
    """A version's score as tagged at registration (NaN when it has none)."""
    raw = mv.tags.get(TAG + metric_key(spec, split))
    return float(raw) if raw is not None else float("nan")


def ensure_registered_model(mlflow_client, task: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.get_registered_model(task)
    except MlflowException:
        mlflow_client.create_registered_model(task, description=f"reprolab task {task}")


def require_registered_model(mlflow_client, task: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.get_registered_model(task)
    except MlflowException as err:
        raise RegistryError(f"{task}: no registered model of that name") from err


def alias_version(mlflow_client, task: str, alias: str):
    """The version holding `alias`, or None when no version holds it."""
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version_by_alias(task, alias)
    except MlflowException:
        return None


def get_version(mlflow_client, task: str, version: str):
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version(task, str(version))
    except MlflowException as err:
        raise RegistryError(f"{task}: no version {version}") from err
