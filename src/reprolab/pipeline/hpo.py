"""hpo@<model>: run or resume the model's Optuna study and write reports/hpo/<model>.json
plus reports/hpo/<model>/ (plots, dvclive progress, best.json).

best.json holds exactly the overrides train@<model> applies: the best params when
`models.<model>.use_hpo` is true, else {}. train depends on that one file, so DVC retrains
only when the applied params change. A model without an `hpo` section gets the stub quickly
(no Optuna import), which keeps dvc.yaml a plain foreach over every model."""

from __future__ import annotations

import time

from reprolab.core.errors import ReprolabError
from reprolab.core.io import atomic_dir, atomic_write_json, dvc_md5
from reprolab.core.layout import HPO_BEST, hpo_dir, hpo_file, processed_dir
from reprolab.params import Params


class StudyError(ReprolabError):
    """The study finished without any successful trial."""


def hpo(name: str, params: Params) -> dict:
    spec = params.models[name]
    if name not in params.hpo:
        report = {"model": name, "study": None, "applied": {}}
        with atomic_dir(hpo_dir(name)) as staging:
            atomic_write_json(staging / HPO_BEST, {})
        atomic_write_json(hpo_file(name), report)
        return report
    return _run(name, params, spec)


def _run(name: str, params: Params, spec) -> dict:
    from tqdm.auto import tqdm

    from reprolab import workloads
    from reprolab.core.tracking import Run
    from reprolab.hpo import plots
    from reprolab.hpo.study import best_of, run_study

    cfg = params.hpo[name]
    module = workloads.data_module(params.datasets[spec.dataset])
    data_path = processed_dir(spec.dataset)
    train = module.load_split(data_path, "train")
    valid = module.load_split(data_path, "valid")
    started = time.perf_counter()
    tags = {"stage": "hpo", "model": name, "task": spec.task, "kind": spec.kind}
    with (
        atomic_dir(hpo_dir(name)) as staging,
        Run(spec.task, run_name=f"hpo-{name}", live_dir=staging, tags=tags) as run,
    ):
        bar = tqdm(total=cfg.n_trials, desc=f"hpo {name}", unit="trial", leave=False)

        def on_trial(study, trial) -> None:
            bar.update(1)
            if trial.state.name == "COMPLETE":
                run.log_step(trial.number, {"value": trial.value, "best_value": study.best_value})

        result = run_study(name, params, train, valid, dvc_md5(data_path), run.run_id, on_trial)
        bar.close()
        winner = best_of(result)
        history = plots.history(
            result.trials, result.direction, result.metric, staging / "history.png"
        )
        imp_path, scores = plots.importances(result.study, staging / "importances.png")
        counts = {
            s: sum(t["state"] == s for t in result.trials)
            for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")
        }
        report = {
            "model": name,
            "study": result.name,
            "storage": _safe(result.storage),
            "metric": (f"cv{cfg.cv_folds}_" if cfg.cv_folds > 1 else "valid_") + result.metric,
            "direction": result.direction,
            "n_trials": cfg.n_trials,
            "ran_now": result.ran,
            "counts": counts,
            "best": winner,
            "importances": scores,
            "seconds": round(time.perf_counter() - started, 2),
            "trials": result.trials,
        }
        if winner is None:
            raise StudyError(
                f"hpo.{name}: no trial of study {result.name} completed "
                f"({counts}); see reports or the MLflow runs for each error"
            )
        applied = winner["params"] if spec.use_hpo else {}
        report["applied"] = applied
        run.log_params({"study": result.name, "n_trials": cfg.n_trials})
        run.log_metrics(
            {f"best_valid_{result.metric}": winner["value"], "trials": counts},
            mlflow_prefix="hpo",
        )
        run.set_tags({"study": result.name})
        atomic_write_json(staging / HPO_BEST, applied)
        atomic_write_json(staging / "study.json", report)
        run.log_artifact(history, "hpo")
        run.log_artifact(imp_path, "hpo")
    atomic_write_json(hpo_file(name), report)
    return report


def _safe(url: str) -> str:
    """A storage URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url
