"""infer@<task>: batch predictions from the champion (`models:/<task>@champion`), or from the
exact model of any past run (`--run-id`), on a CSV of raw inputs or, for image tasks, a
directory of images. With `--run-id` and no explicit input, the run's own input data is fetched
through DVC (at its recorded commit, else by its recorded hash) and md5-checked first."""

from __future__ import annotations

from pathlib import Path

from reprolab import workloads
from reprolab.core import registry, saving
from reprolab.core.errors import DataError
from reprolab.core.layout import predictions_file
from reprolab.core.split import PredictsFromFiles
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
    if not isinstance(module, PredictsFromFiles):
        raise DataError(
            f"infer.{task}: workload {dataset.workload!r} does not predict from files "
            "(its data module has no read_inputs/write_predictions)"
        )
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
        inputs = module.read_inputs(source)
        predictor = saving.load_predictor(model_dir)
    else:
        inputs = module.read_inputs(source)  # bad input fails before any model loads
        uri, which = registry.champion(task)
        predictor = saving.load_predictor(uri)
        used = f"{uri} = {which}"
        output = output or predictions_file(task)

    return module.write_predictions(predictor, inputs, Path(output), dataset), used


def _is_under(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True
