"""Hyper-parameter optimisation: an Optuna study per model (`hpo.<model>` in params.yaml),
each trial a nested MLflow run, results in reports/hpo/. See docs/hpo.md."""
