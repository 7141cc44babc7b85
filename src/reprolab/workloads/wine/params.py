"""Params of the wine workload: UCI Wine Quality regression: sklearn regressors and a torch MLP.
Each kind is declared here once (its `kind` Literal, and `impl`: the module:class in this
package that implements it)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from reprolab.core.params import (
    DatasetBase,
    Footprint,
    Fraction,
    ModelBase,
    PosInt,
    Width,
    mlp_parameters,
)
from reprolab.core.train.setup import Device

# what this workload's evaluate stage writes per split: the choices of registry.<task>.metric
METRICS = ("rmse", "mae", "r2", "acc_0_5", "acc_1_0")
N_FEATURES = 12  # the 11 UCI inputs and is_red (reprolab.workloads.wine.data.FEATURES)


class WineDataset(DatasetBase):
    """UCI Wine Quality, red and white, as one regression set with a `color` feature."""

    kind: Literal["wine"]
    colors: list[Literal["red", "white"]] = Field(default=["red", "white"], min_length=1)
    drop_duplicates: bool = True
    valid_size: Annotated[float, Field(gt=0, lt=0.5)] = 0.15
    test_size: Annotated[float, Field(gt=0, lt=0.5)] = 0.2
    # below 1% the splits of the ~6,500 wines get too small to score
    sample_fraction: Annotated[float, Field(ge=0.01, le=1)] = 1.0


class RidgeParams(ModelBase):
    kind: Literal["ridge"]
    impl: ClassVar[str] = "sklearn_models:SklearnRegressor"
    alpha: Annotated[float, Field(ge=0)] = 1.0


class RandomForestParams(ModelBase):
    kind: Literal["random_forest"]
    impl: ClassVar[str] = "sklearn_models:SklearnRegressor"
    n_estimators: PosInt = 300
    max_depth: PosInt | None = None
    min_samples_leaf: PosInt = 1
    max_features: Fraction | Literal["sqrt", "log2"] | None = 1.0
    n_jobs: Annotated[int, Field(ge=-1, le=1024)] = -1  # -1: every core; 0 is refused

    @model_validator(mode="after")
    def _jobs(self) -> RandomForestParams:
        if self.n_jobs == 0:
            raise ValueError("n_jobs: must be -1 (every core) or 1..1024, got 0")
        return self


class HistGradientBoostingParams(ModelBase):
    kind: Literal["hist_gradient_boosting"]
    impl: ClassVar[str] = "sklearn_models:SklearnRegressor"
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 0.05
    max_iter: PosInt = 500
    max_leaf_nodes: Annotated[int, Field(ge=2)] = 31
    min_samples_leaf: PosInt = 20
    l2_regularization: Annotated[float, Field(ge=0)] = 0.0
    max_features: Fraction = 1.0  # share of features tried at each split (1: all)
    early_stopping: bool = True


class TorchMLPParams(ModelBase):
    kind: Literal["torch_mlp"]
    impl: ClassVar[str] = "torch_mlp:TorchMLPRegressor"
    hidden: list[Width] = Field(default=[64, 64], min_length=1, max_length=16)
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1
    lr: Annotated[float, Field(gt=0, le=1)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0)] = 1e-4
    batch_size: PosInt = 64
    max_epochs: PosInt = 200
    patience: PosInt = 20
    device: Device = "auto"  # auto: CUDA when usable (torchrun: each rank's GPU)
    deterministic: bool = True  # deterministic kernels, fixed threads, seeded RNGs
    threads: PosInt | None = None  # torch threads; None: 2 when deterministic

    def footprint(self, dataset: Any, base: Any) -> Footprint:
        # float32; per unit a step keeps the linear output, the ReLU and the dropout mask
        return Footprint(
            mlp_parameters(N_FEATURES, self.hidden, 1),
            self.batch_size * sum(self.hidden) * 3 * 4,
            f"hidden {self.hidden}",
        )


DATASETS = (WineDataset,)
MODELS = (
    RidgeParams,
    RandomForestParams,
    HistGradientBoostingParams,
    TorchMLPParams,
)
