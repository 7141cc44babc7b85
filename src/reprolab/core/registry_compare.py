"""The gate's comparison of a new version with the champion: a paired bootstrap over the
validation examples both were scored on (core.paired) when both runs kept their
per-example validation table and were trained on the same data; otherwise (a retrain on a
new data drop, versions from before the tables were kept) the point scores, and the gate's
line says why."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from reprolab.core import paired
from reprolab.core.params import RegistryTask
from reprolab.core.tracking import TAG


@dataclass(frozen=True)
class Paired:
    interval: paired.Interval | None
    why_not: str = ""  # when interval is None: why the versions could not be paired


def compare(mlflow_client, spec: RegistryTask, new, champion) -> Paired:
    """Pair `new` with `champion` on their validation examples, or say why not."""
    if _data(new) != _data(champion):
        return Paired(None, "they were scored on different validation data")
    tables = [valid_table(mlflow_client, v.run_id) for v in (new, champion)]
    if tables[0] is None or tables[1] is None:
        which = "v" + str((new, champion)[tables.index(None)].version)
        return Paired(None, f"{which} kept no per-example validation table")
    why = paired.same_examples(*tables)
    if why:
        return Paired(None, why)
    stats = [paired.statistic(spec.metric, table) for table in tables]
    if stats[0] is None or stats[1] is None:
        return Paired(None, f"the per-example tables do not give {spec.metric}")
    interval = paired.bootstrap(
        stats[0],
        stats[1],
        maximize=spec.direction == "maximize",
        samples=spec.bootstrap.samples,
        confidence=spec.bootstrap.confidence,
    )
    return Paired(interval)


def valid_table(mlflow_client, run_id: str):
    """The run's per-example validation table (None: the run kept none)."""
    import pandas as pd
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = mlflow_client.download_artifacts(run_id, f"eval/{paired.VALID_TABLE}", tmp)
        except (MlflowException, OSError):
            return None
        if not Path(local).is_file():
            return None
        return pd.read_csv(local, keep_default_na=False, low_memory=False)


def _data(version) -> str:
    """The md5 of the processed data a version was trained and scored on ('' unknown)."""
    return version.tags.get(TAG + "data_md5", "")
