"""scikit-learn regressors (ridge, random forest, histogram gradient boosting) behind the
Model interface, logged with the real `mlflow.sklearn` flavour. Each reports a step-wise
validation curve (trees or boosting iterations), so every model has a learning curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import numpy as np

from reprolab.core.model import Model, StepLogger
from reprolab.core.saving import save_sklearn

MAX_CURVE_POINTS = 40


def _rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred) - y) ** 2)))


class SklearnRegressor(Model):
    def __init__(self, params: Any, seed: int) -> None:
        super().__init__(params, seed)
        self.estimator = self._make_estimator()

    def _make_estimator(self):
        p = self.params
        if p.kind == "ridge":
            from sklearn.linear_model import Ridge
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            return make_pipeline(StandardScaler(), Ridge(alpha=p.alpha))
        if p.kind == "random_forest":
            from sklearn.ensemble import RandomForestRegressor

            return RandomForestRegressor(
                n_estimators=p.n_estimators,
                max_depth=p.max_depth,
                min_samples_leaf=p.min_samples_leaf,
                max_features=p.max_features,
                n_jobs=p.n_jobs,
                random_state=self.seed,
            )
        if p.kind == "hist_gradient_boosting":
            from sklearn.ensemble import HistGradientBoostingRegressor

            return HistGradientBoostingRegressor(
                learning_rate=p.learning_rate,
                max_iter=p.max_iter,
                max_leaf_nodes=p.max_leaf_nodes,
                min_samples_leaf=p.min_samples_leaf,
                l2_regularization=p.l2_regularization,
                max_features=p.max_features,
                early_stopping=p.early_stopping,
                random_state=self.seed,
            )
        raise ValueError(f"not a scikit-learn kind: {p.kind}")

    def fit(self, train: Any, valid: Any, run: StepLogger | None = None) -> Self:
        self.estimator.fit(train.X, train.y)
        if run is not None:
            for step, metrics in self._curve(train, valid):
                run.log_step(step, metrics)
        return self

    def _curve(self, train: Any, valid: Any):
        """(step, {train_rmse, valid_rmse}) along the model's own capacity axis."""
        est = self.estimator
        if self.params.kind == "random_forest":
            per_tree = {
                name: np.stack([t.predict(split.X.to_numpy()) for t in est.estimators_])
                for name, split in (("train", train), ("valid", valid))
            }
            steps = grid(len(est.estimators_))
            cumulative = {name: np.cumsum(p, axis=0) for name, p in per_tree.items()}
            for k in steps:
                yield (
                    k,
                    {
                        f"{name}_rmse": _rmse(split.y, cumulative[name][k - 1] / k)
                        for name, split in (("train", train), ("valid", valid))
                    },
                )
        elif self.params.kind == "hist_gradient_boosting":
            staged = {
                name: list(est.staged_predict(split.X))
                for name, split in (("train", train), ("valid", valid))
            }
            for k in grid(len(staged["train"])):
                yield (
                    k,
                    {
                        f"{name}_rmse": _rmse(split.y, staged[name][k - 1])
                        for name, split in (("train", train), ("valid", valid))
                    },
                )
        else:
            yield (
                1,
                {
                    "train_rmse": _rmse(train.y, est.predict(train.X)),
                    "valid_rmse": _rmse(valid.y, est.predict(valid.X)),
                },
            )

    def predict(self, inputs: Any) -> np.ndarray:
        return self.estimator.predict(inputs)

    def save(self, path: Path, input_example: Any) -> None:
        save_sklearn(self.estimator, path, input_example, self.predict)


def grid(n: int) -> list[int]:
    """At most MAX_CURVE_POINTS steps in 1..n, always ending at n."""
    return sorted({int(k) for k in np.linspace(1, n, min(n, MAX_CURVE_POINTS)).round()})
