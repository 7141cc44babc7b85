"""Base types of every params section and the error text: pydantic's errors become one line
per bad key, `models.wine-rf.n_estimators: must be > 0, got -5`. Workloads build their kinds'
params on DatasetBase and ModelBase; reprolab.params assembles params.yaml from them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Sizes and counts are bounded so that a typo cannot start a run that never ends or a layer
# that fills the memory: the limit is in the message (`must be <= 1000000, got 10**12`).
MAX_COUNT = 1_000_000  # steps, epochs, trees, trials, rows, tokens
MAX_WIDTH = 16_384  # units or channels of one layer
PosInt = Annotated[int, Field(gt=0, le=MAX_COUNT)]
Width = Annotated[int, Field(gt=0, le=MAX_WIDTH)]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]  # numpy's and torch's seed range
Fraction = Annotated[float, Field(gt=0, le=1)]


# a split smaller than this cannot be scored (the wine sample_fraction floor keeps ~10 rows)
MIN_SPLIT_ROWS = 10


class Strict(BaseModel):
    # NaN and infinities are refused in every float of params.yaml; strict: a string or a
    # boolean is never turned into a number (`max_epochs: "5"`, `n_estimators: true`), while
    # an int is still a valid float
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


def range_problems(key: str, pair: Any) -> list[str]:
    """A (low, high) pair whose low exceeds its high, as one line naming the key."""
    low, high = pair
    return [f"{key}: min {low} must be <= max {high}, got {list(pair)}"] if low > high else []


def split_problems(key: str, rows: dict[str, float], how: str, minimum: int) -> list[str]:
    """One line naming `key` when an estimated split holds fewer than `minimum` rows."""
    if all(n >= minimum for n in rows.values()):
        return []
    counts = ", ".join(f"{split} {max(int(n), 0)}" for split, n in rows.items())
    return [
        f"{key}: leaves about {counts} row(s) ({how}), too few: each of train/valid/test "
        f"needs at least {minimum}"
    ]


@dataclass(frozen=True)
class Footprint:
    """What a torch model would need, estimated from its params by arithmetic alone (nothing
    is built): its parameter count and the activations one training step keeps."""

    parameters: int
    activation_bytes: float
    basis: str  # which params the estimate reads, for the error line


def mlp_parameters(n_in: int, hidden: list[int], n_out: int) -> int:
    """Weights and biases of a stack of Linear layers."""
    widths = [n_in, *hidden, n_out]
    return sum(a * b + b for a, b in pairwise(widths))


def _workload_of(cls: type) -> str | None:
    """`wine` for a class defined in reprolab.workloads.wine.params."""
    parts = cls.__module__.split(".")
    return parts[2] if parts[:2] == ["reprolab", "workloads"] and len(parts) > 3 else None


class _Routed(Strict):
    """An entry of a workload: `workload` names the package under reprolab.workloads that
    declares its kind (filled in from the class when a params object is built in code)."""

    workload: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _own_workload(cls, data: Any) -> Any:
        own = _workload_of(cls)
        if isinstance(data, dict) and own and data.get("workload") is None:
            return {**data, "workload": own}
        return data


class DataDrop(Strict):
    """A data version brought in by `reprolab retrain`: a folder laid out like the mirror,
    tracked by DVC (`<path>.dvc`) and pinned here by DVC's md5 of the folder, as upstream
    files are pinned by sha256 in the workload's code. Changing it is what reruns prepare."""

    path: str = Field(pattern=r"^data/drops/[A-Za-z0-9._-]+$")
    md5: str = Field(pattern=r"^[0-9a-f]{32}\.dir$")


class DatasetBase(_Routed):
    """A dataset entry; its kind is implemented by the `data` module of its workload.
    `drop`: read the raw files from a retrain data drop instead of the upstream source."""

    impl: ClassVar[str] = "data"
    drop: DataDrop | None = None


class ModelBase(_Routed):
    """Routing keys every model has. Which are required depends on the section the model sits
    in (see reprolab.params.MODEL_SECTIONS): `models` and `finetune` need a dataset and a
    task, `pretrain` a dataset, `imports` neither; only `finetune` models start from a `base`.
    `impl` (a class variable of each kind) is the `module:Class` in the workload package."""

    impl: ClassVar[str] = ""
    dataset: str | None = None
    task: str | None = None
    base: str | None = (
        None  # finetune: the pretrain/imports entry whose models/<base> it starts from
    )
    use_hpo: bool = False  # train with the best params of hpo@<model> (reports/hpo/)

    def data_problems(self, dataset: Any) -> list[str]:
        """Lines (`key: reason`) where this model's params cannot fit its dataset's params."""
        return []

    def footprint(self, dataset: Any, base: Any) -> Footprint | None:
        """The estimated size of a torch model (None: not a torch model, or not knowable
        from params alone); checked against params.yaml `limits`."""
        return None

    def outside_problems(self) -> list[str]:
        """Lines (`key: reason`) for what the entry reads outside params.yaml (a package, a
        file): the check stage runs these, since they depend on the machine."""
        return []


class Limits(Strict):
    """Caps on each torch model's estimated size: a typo (a layer of 16,384 units sixteen
    times, a million layers, a crop of a million pixels) would otherwise pass every per-key
    bound and die in the allocator after DVC has deleted the old outputs."""

    max_params: Annotated[int, Field(gt=0)] = 200_000_000
    max_activation_mb: Annotated[float, Field(gt=0)] = 8192


ROUTING_KEYS = frozenset({"workload", "dataset", "task", "base", "kind", "use_hpo"})  # never tuned


class SearchParam(Strict):
    """One dimension of a search space: int or float in [low, high] (optionally log-scaled),
    or a categorical choice."""

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: Annotated[float, Field(gt=0)] | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> SearchParam:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("choices: a categorical needs a non-empty list")
            if self.low is not None or self.high is not None:
                raise ValueError("type: a categorical takes `choices`, not low/high")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"type: {self.type} needs both `low` and `high`")
        if self.low > self.high:
            raise ValueError(f"low: {self.low} > high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"low: a log scale needs low > 0, got {self.low}")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError(f"type: int needs integer low and high, got {self.low}, {self.high}")
        if self.choices is not None:
            raise ValueError(f"choices: only for categorical, not {self.type}")
        return self

    def corners(self) -> list[Any]:
        """Values that must all be valid for the model (bounds, or every choice)."""
        if self.type == "categorical":
            return list(self.choices or [])
        if self.type == "int":
            return [int(self.low), int(self.high)]
        probes = [float(self.low), float(self.high)]
        if self.high > self.low:  # a fractional value: an int-only param must refuse it
            mid = self.low + (self.high - self.low) / 2
            probes.append(mid if mid != int(mid) else mid + (self.high - self.low) / 100)
        return probes


class PrunerParams(Strict):
    kind: Literal["median", "none"] = "median"
    n_startup_trials: Annotated[int, Field(ge=0)] = 5
    n_warmup_steps: Annotated[int, Field(ge=0)] = 5


class HpoStudy(Strict):
    """An Optuna study over one model's params (params.yaml `hpo.<model>`). The objective is
    the task's registry metric on the validation split; intermediate values are
    `valid_<metric>` from the training loop."""

    space: dict[str, SearchParam] = Field(min_length=1)
    n_trials: Annotated[int, Field(gt=0, le=10_000)] = 20
    timeout: Annotated[float, Field(gt=0)] | None = None  # seconds for this invocation
    seed: Seed = 0
    pruner: PrunerParams = PrunerParams()
    # >1: objective = k-fold mean over train+valid
    cv_folds: Annotated[int, Field(ge=0, le=20)] = 0
    threads: PosInt | None = 1  # threads of native libraries (OpenMP/BLAS) inside a trial
    storage: str | None = None  # SQLAlchemy URL; default sqlite:///<repo root>/optuna.db
    study_name: str | None = None  # default: <model>-<hash of this section and the model's>

    @model_validator(mode="after")
    def _storage(self) -> HpoStudy:
        if self.storage is not None and not STORAGE_URL.match(self.storage):
            raise ValueError(
                f"storage: {self.storage!r} is not a database Optuna's RDB storage opens, "
                "expected sqlite:///<path>, postgresql[+driver]://..., mysql[+driver]://... "
                "(or null: optuna.db at the repository root)"
            )
        return self


# the SQLAlchemy URLs Optuna's RDBStorage (reprolab.hpo.storage) is used with
STORAGE_URL = re.compile(r"^(sqlite:///.+|(postgresql|mysql|mariadb)(\+\w+)?://.+)$")


class Baseline(Strict):
    """What a model of the task must beat to be worth serving at all (Otsu's threshold for
    nuclei, Ziegler-Nichols for PID, the base model for a fine-tune), with its validation
    score: a version that does not beat it never becomes candidate or champion."""

    name: Annotated[str, Field(min_length=1)]
    score: float


class Bootstrap(Strict):
    """The paired bootstrap that compares a new version with the champion (core.paired)."""

    samples: Annotated[int, Field(ge=100, le=100_000)] = 1000
    confidence: Annotated[float, Field(gt=0.5, lt=1)] = 0.95


class RegistryTask(Strict):
    """Promotion gate of one task: versions compete on `eval_valid_<metric>`; test is reported."""

    metric: str
    direction: Literal["minimize", "maximize"]
    threshold: float
    # how much a new version must beat the champion by (metric units, the lower bound of the
    # paired bootstrap's interval where both were scored on the same examples) to replace it
    min_improvement: Annotated[float, Field(ge=0)] = 0.0
    baseline: Baseline | None = None
    bootstrap: Bootstrap = Bootstrap()

    def passes(self, value: float) -> bool:
        """Meets the threshold and beats the baseline."""
        if value != value:  # NaN never passes
            return False
        if self.baseline is not None and self.improvement(value, self.baseline.score) <= 0:
            return False
        return value <= self.threshold if self.direction == "minimize" else value >= self.threshold

    def clears(self, low: float) -> bool:
        """Whether an improvement's lower confidence bound is a real gain of the margin."""
        return low > 0 and low >= self.min_improvement

    def improvement(self, value: float, than: float) -> float:
        """How much `value` beats `than` (negative: worse), in the metric's units."""
        return than - value if self.direction == "minimize" else value - than

    def better(self, value: float, than: float | None) -> bool:
        """Beats `than` by more than nothing and by at least `min_improvement`."""
        if value != value:
            return False
        if than is None:
            return True
        gain = self.improvement(value, than)
        return gain > 0 and gain >= self.min_improvement


RULES = {
    "greater_than": lambda c: f"must be > {c['gt']}",
    "greater_than_equal": lambda c: f"must be >= {c['ge']}",
    "less_than": lambda c: f"must be < {c['lt']}",
    "less_than_equal": lambda c: f"must be <= {c['le']}",
    "too_short": lambda c: f"must have at least {c['min_length']} item(s)",
    "literal_error": lambda c: f"must be one of {c['expected']}",
    # strict types: the value is refused, never converted
    "int_type": lambda c: "must be an integer (a string or true/false is not converted)",
    "float_type": lambda c: "must be a number (a string or true/false is not converted)",
    "bool_type": lambda c: "must be true or false",
    "string_type": lambda c: "must be a string",
    "none_required": lambda c: "must be null",
    "list_type": lambda c: "must be a list",
    "tuple_type": lambda c: "must be a list",
    "dict_type": lambda c: "must be a mapping",
    "model_type": lambda c: "must be a mapping",
}


def describe(error: dict, raw: Any) -> str:
    """One line: the key path as the user wrote it (pydantic's union tags removed)."""
    path, node, loc = [], raw, error["loc"]
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            path.append(str(part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            path.append(f"[{part}]")
            node = node[part]
        elif i == len(loc) - 1 and error["type"] in ("extra_forbidden", "missing"):
            path.append(part)  # the offending or absent key itself
        # anything else is a tag pydantic inserted (e.g. the union member): skip it
    where = ".".join(path).replace(".[", "[") or "(top level)"
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "extra_forbidden":
        return f"{where}: unknown key"
    if kind == "missing":
        return f"{where}: required key is missing"
    if kind == "union_tag_invalid":
        return (
            f"{where}.kind: unknown kind {ctx.get('tag')!r}, expected one of {ctx['expected_tags']}"
        )
    if kind == "value_error":
        text = str(ctx.get("error", error["msg"])).removeprefix("Value error, ")
        if not path:  # a whole-file check: its lines name their keys already
            return text
        return "\n".join(f"{where}.{line}" for line in text.splitlines())
    rule = RULES.get(kind)
    text = rule(ctx) if rule else error["msg"][0].lower() + error["msg"][1:]
    return f"{where}: {text}, got {error.get('input')!r}"
