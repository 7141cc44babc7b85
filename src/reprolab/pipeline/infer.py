"""infer@<task>: batch predictions from the champion (`models:/<task>@champion`), or from the
exact model of any past run (`--run-id`), on a CSV of raw inputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from reprolab import data, models, registry
from reprolab.errors import DataError
from reprolab.io import atomic_write_text
from reprolab.layout import predictions_file
from reprolab.params import Params


def infer(
    task: str,
    params: Params,
    run_id: str | None = None,
    input_csv: Path | None = None,
    output: Path | None = None,
) -> tuple[Path, str]:
    """Returns the output path and a description of the model that predicted."""
    spec = params.infer[task]
    dataset = params.datasets[spec.dataset]
    module = data.module_for(dataset.kind)
    source = Path(input_csv or spec.input)
    if not source.is_file():
        raise DataError(f"{source}: input CSV not found")
    frame = module.read_inputs(source) if hasattr(module, "read_inputs") else _read_csv(source)
    inputs = module.features(frame, str(source))

    if run_id:
        from reprolab.lineage import fetch_model

        predictor = models.load_predictor(fetch_model(run_id))
        used = f"run {run_id}"
        output = output or predictions_file(task).with_name(f"{task}-{run_id[:8]}.csv")
    else:
        uri, which = registry.champion(task)
        predictor = models.load_predictor(uri)
        used = f"{uri} = {which}"
        output = output or predictions_file(task)
    predicted = predictor.predict(inputs)
    if hasattr(module, "prediction_columns"):  # e.g. label name + probability
        for column, values in module.prediction_columns(predicted, dataset).items():
            frame[column] = values
    else:
        frame["prediction"] = predicted
    atomic_write_text(Path(output), frame.to_csv(index=False, float_format="%.5f"))
    return Path(output), used


def _read_csv(source: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(source)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{source}: cannot parse as CSV: {err}") from err
