"""infer@<task>: batch predictions from the champion (`models:/<task>@champion`), or from the
exact model of any past run (`--run-id`), on a CSV of raw inputs or, for image tasks, a
directory of images. With `--run-id` and no explicit input, the run's own input data is fetched
through DVC (at its recorded commit, else by its recorded hash) and md5-checked first."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from reprolab import workloads
from reprolab.core import registry, saving
from reprolab.core.errors import DataError
from reprolab.core.io import atomic_dir, atomic_write_text
from reprolab.core.layout import predictions_file
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
    module = workloads.data_module(dataset)
    source = Path(input_csv or spec.input)

    if run_id:
        from reprolab.core.lineage import fetch_data, fetch_model, lineage_of

        model_dir = fetch_model(run_id)
        used = f"run {run_id}"
        tags = lineage_of(run_id)
        data_path = tags.get("data_path")
        if input_csv is None and data_path and _is_under(source, Path(data_path)):
            # the run's own data, not whatever the workspace holds now
            source = fetch_data(run_id) / source.relative_to(data_path)
            used += f" on its own {data_path} (md5 {tags.get('data_md5', '?')})"
        output = output or predictions_file(task).with_name(f"{task}-{run_id[:8]}.csv")
        inputs = _read_inputs(module, source)
        predictor = saving.load_predictor(model_dir)
    else:
        inputs = _read_inputs(module, source)  # bad input fails before any model loads
        uri, which = registry.champion(task)
        predictor = saving.load_predictor(uri)
        used = f"{uri} = {which}"
        output = output or predictions_file(task)

    if hasattr(module, "read_inputs"):
        return _write_masks(predictor, *inputs, Path(output)), used
    frame, features = inputs
    predicted = predictor.predict(features)
    if hasattr(module, "prediction_columns"):  # e.g. label name + probability
        for column, values in module.prediction_columns(predicted, dataset).items():
            frame[column] = values
    else:
        frame["prediction"] = predicted
    atomic_write_text(Path(output), frame.to_csv(index=False, float_format="%.5f"))
    return Path(output), used


def _read_inputs(module, source: Path) -> tuple:
    """(ids, image frame) for image tasks, (raw frame, model features) for tabular and text
    ones (`read_table` when the dataset's files need more than a plain CSV reader)."""
    if hasattr(module, "read_inputs"):
        return module.read_inputs(source)
    frame = module.read_table(source) if hasattr(module, "read_table") else _read_csv(source)
    return frame, module.features(frame, str(source))


def _write_masks(predictor, ids: list[str], inputs: pd.DataFrame, output: Path) -> Path:
    """One CSV row per image (size, foreground fraction, run-length mask) and a PNG mask per
    image in a folder named like the CSV."""
    from reprolab.workloads.nuclei import images

    predicted = predictor.predict(inputs)
    masks = [images.text_to_mask(text) for text in predicted["mask"]]
    with atomic_dir(output.with_suffix("")) as staging:
        for key, mask in zip(ids, masks, strict=True):
            (staging / f"{key}.png").write_bytes(images.encode_png(mask))
    frame = pd.DataFrame(
        {
            "id": ids,
            "width": predicted["width"],
            "height": predicted["height"],
            "foreground_fraction": predicted["foreground_fraction"],
            "mask_png": [f"{output.with_suffix('').name}/{key}.png" for key in ids],
            "mask_rle": [images.rle_encode(m) for m in masks],
        }
    )
    atomic_write_text(output, frame.to_csv(index=False, float_format="%.5f"))
    return output


def _read_csv(source: Path) -> pd.DataFrame:
    if not source.is_file():
        raise DataError(f"{source}: input CSV not found")
    try:
        return pd.read_csv(source)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{source}: cannot parse as CSV: {err}") from err


def _is_under(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True
