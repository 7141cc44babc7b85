"""The schema of params.yaml, assembled from the workloads: each entry of `datasets` and of
the model sections names its `workload`, and that package's params module declares the kinds
it may have. `load_params()` validates the file before any compute and reports one line per bad
key (`models.wine-rf.n_estimators: must be > 0, got -5`); unknown keys are errors.

A stage passes `only=` (the name of its model, dataset or task): entries of other workloads
are then read for their routing keys alone, so a stage imports no other workload's code and
its DVC dependencies can be exactly its own workload package."""

from __future__ import annotations

import importlib
import pkgutil
import re
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, Union, get_args

import yaml
from pydantic import (
    ConfigDict,
    Field,
    SerializeAsAny,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from reprolab.core.errors import ParamsError
from reprolab.core.params import (
    ROUTING_KEYS,
    RULES,
    DatasetBase,
    HpoStudy,
    Limits,
    ModelBase,
    PosInt,
    RegistryTask,
    Seed,
    Strict,
    describe,
)

# params.yaml sections that hold models, each its own dvc.yaml stage family writing
# models/<name>: (section, needs a dataset, needs a task, needs a base)
MODEL_SECTIONS = {
    "models": (True, True, False),  # train@<name> + evaluate@<name>
    "pretrain": (True, False, False),  # pretrain@<name>: a base model learned from a dataset
    "imports": (False, False, False),  # import@<name>: a base model brought in from outside
    "finetune": (True, True, True),  # finetune@<name>: train from models/<base>, then evaluate
    "ensembles": (True, True, False),  # ensemble@<name>: combine trained members, then evaluate
}
BASE_SECTIONS = ("pretrain", "imports")
ENTRY_SECTIONS = ("datasets", *MODEL_SECTIONS)


def workloads() -> list[str]:
    """The packages under reprolab.workloads (found on disk: nothing is imported)."""
    import reprolab.workloads as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.ispkg)


def schema(workload: str) -> ModuleType:
    """The params module of `workload`: its DATASETS and MODELS classes."""
    return importlib.import_module(f"reprolab.workloads.{workload}.params")


@cache
def kinds(workload: str, section: str) -> list[str]:
    """The kinds `workload` declares for `section` (datasets, or any model section)."""
    module = schema(workload)
    classes = module.DATASETS if section == "datasets" else module.MODELS
    return [k for c in classes for k in get_args(c.model_fields["kind"].annotation)]


@cache
def _adapter(workload: str, section: str) -> TypeAdapter:
    """Validates one entry of `section` against the kinds `workload` declares."""
    module = schema(workload)
    classes = module.DATASETS if section == "datasets" else module.MODELS
    if len(classes) == 1:
        return TypeAdapter(classes[0])
    return TypeAdapter(Annotated[Union[classes], Field(discriminator="kind")])  # noqa: UP007


class ForeignDataset(DatasetBase):
    """A dataset of a workload this process did not ask for: only its routing keys are read."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: str


class Foreign(ModelBase):
    """A model of a workload this process did not ask for: only its routing keys are read."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: str


# ---------------------------------------------------------------- infer, report, the file


class InferTask(Strict):
    workload: str  # the package whose data module reads `input`
    input: str
    dataset: str


class ReportParams(Strict):
    title: str = "reprolab report"
    scatter_points: PosInt = 2000
    segmentation_examples: PosInt = 4  # test images shown with their masks
    worst_images: PosInt = 5  # per-image Dice of the worst test images


class Params(Strict):
    seed: Seed = 42
    datasets: dict[str, SerializeAsAny[DatasetBase]]
    models: dict[str, SerializeAsAny[ModelBase]] = {}
    pretrain: dict[str, SerializeAsAny[ModelBase]] = {}
    imports: dict[str, SerializeAsAny[ModelBase]] = {}
    finetune: dict[str, SerializeAsAny[ModelBase]] = {}
    ensembles: dict[str, SerializeAsAny[ModelBase]] = {}
    registry: dict[str, RegistryTask]
    infer: dict[str, InferTask] = {}
    hpo: dict[str, HpoStudy] = {}
    report: ReportParams = ReportParams()
    limits: Limits = Limits()  # caps on every torch model's estimated size

    @model_validator(mode="after")
    def _references_exist(self) -> Params:
        problems = self._check_model_sections()
        for task, spec in self.infer.items():
            dataset = self.datasets.get(spec.dataset)
            if dataset is not None and dataset.workload != spec.workload:
                problems.append(
                    f"infer.{task}.workload: {spec.workload!r}, but dataset {spec.dataset!r} "
                    f"is of workload {dataset.workload!r}"
                )
            if task not in self.registry:
                problems.append(f"infer.{task}: no registry.{task} section")
            if spec.dataset not in self.datasets:
                problems.append(f"infer.{task}.dataset: unknown dataset {spec.dataset!r}")
        for name, model in self.models.items():
            if model.use_hpo and name not in self.hpo:
                problems.append(f"models.{name}.use_hpo: true, but there is no hpo.{name} section")
        for name, study in self.hpo.items():
            problems += _check_space(name, study, self.models.get(name))
        problems += self._check_registry_metrics()
        problems += self._check_fit()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _check_model_sections(self) -> list[str]:
        problems, seen = [], {}
        bases = {name for section in BASE_SECTIONS for name in getattr(self, section)}
        for section, (needs_dataset, needs_task, needs_base) in MODEL_SECTIONS.items():
            for name, model in getattr(self, section).items():
                where = f"{section}.{name}"
                if name in seen:
                    problems.append(f"{where}: name already used by {seen[name]}.{name}")
                seen[name] = section
                if model.dataset in self.datasets and (
                    self.datasets[model.dataset].workload != model.workload
                ):
                    theirs = self.datasets[model.dataset].workload
                    problems.append(
                        f"{where}.workload: {model.workload!r}, but its dataset "
                        f"{model.dataset!r} is of workload {theirs!r}"
                    )
                if needs_dataset and model.dataset is None:
                    problems.append(f"{where}.dataset: required key is missing")
                elif model.dataset is not None and model.dataset not in self.datasets:
                    problems.append(
                        f"{where}.dataset: unknown dataset {model.dataset!r}, "
                        f"expected one of {sorted(self.datasets)}"
                    )
                if needs_task and model.task is None:
                    problems.append(f"{where}.task: required key is missing")
                elif model.task is not None and model.task not in self.registry:
                    problems.append(
                        f"{where}.task: no registry.{model.task} section, "
                        f"expected one of {sorted(self.registry)}"
                    )
                if needs_base and model.base not in bases:
                    problems.append(
                        f"{where}.base: must name a pretrain or imports entry, "
                        f"expected one of {sorted(bases)}, got {model.base!r}"
                    )
                elif not needs_base and model.base is not None:
                    problems.append(f"{where}.base: only finetune entries start from a base")
                problems += self._check_members(where, model)
        return problems

    def _check_registry_metrics(self) -> list[str]:
        """The gate's metric must be one the task's evaluation writes (a typo would otherwise
        show only after every model has trained, as NaN scores no version can pass)."""
        problems = []
        for task, spec in self.registry.items():
            models = [self.model(m) for m in self.models_of_task(task)]
            if any(isinstance(m, Foreign) for m in models):
                continue  # another workload's task: the check stage validates it (no import here)
            kinds_of = {m.workload for m in models}
            produced = sorted(
                {m for w in kinds_of if w in workloads() for m in getattr(schema(w), "METRICS", ())}
            )
            if produced and spec.metric not in produced:
                problems.append(
                    f"registry.{task}.metric: {spec.metric!r} is not a metric the task's "
                    f"evaluation writes, expected one of {produced}"
                )
        return problems

    def _check_fit(self) -> list[str]:
        """Each model against its dataset (a context longer than the corpus) and against
        `limits` (its estimated parameters and activations): arithmetic on params only, so
        a model of billions of parameters is refused before anything is allocated."""
        problems, over = [], set()
        for section in MODEL_SECTIONS:  # bases before the models fine-tuned from them
            for name, model in getattr(self, section).items():
                if isinstance(model, Foreign) or model.base in over:
                    continue  # not validated here, or its base's line says it already
                where = f"{section}.{name}"
                dataset = self.datasets.get(model.dataset) if model.dataset else None
                if isinstance(dataset, ForeignDataset) or (
                    dataset is not None and dataset.workload != model.workload
                ):
                    dataset = None  # reported above, or not validated in this process
                misfit = model.data_problems(dataset) if dataset is not None else []
                problems += [f"{where}.{line}" for line in misfit]
                if not misfit:  # one line per model: its sizes are estimated once it fits
                    found = model.footprint(dataset, self._base_of(model))
                    lines = _over_limits(where, found, self.limits)
                    over |= {name} if lines else set()
                    problems += lines
        return problems

    def _base_of(self, model: Any) -> Any:
        """The validated pretrain/imports entry a finetune model starts from, if any."""
        for section in BASE_SECTIONS:
            found = getattr(self, section).get(model.base) if model.base else None
            if found is not None and not isinstance(found, Foreign):
                return found
        return None

    def _check_members(self, where: str, model: Any) -> list[str]:
        """An ensemble's members: trained or fine-tuned models of the same dataset and task."""
        members = getattr(model, "members", None)
        if members is None:
            return []
        problems = []
        if len(set(members)) != len(members):
            problems.append(f"{where}.members: the same model twice, got {members}")
        for member in members:
            spec = self.models.get(member) or self.finetune.get(member)
            if spec is None:
                problems.append(
                    f"{where}.members: {member!r} is not a models or finetune entry, expected "
                    f"one of {sorted([*self.models, *self.finetune])}"
                )
            elif (spec.dataset, spec.task) != (model.dataset, model.task):
                problems.append(
                    f"{where}.members: {member!r} learns {spec.dataset}/{spec.task}, "
                    f"not {model.dataset}/{model.task}"
                )
        return problems

    def model(self, name: str) -> Any:
        """The params of model `name`, whichever model section holds it."""
        for section in MODEL_SECTIONS:
            found = getattr(self, section).get(name)
            if found is not None:
                return found
        raise KeyError(name)

    def section_of(self, name: str) -> str:
        return next(s for s in MODEL_SECTIONS if name in getattr(self, s))

    def models_of_task(self, task: str) -> list[str]:
        """Models that compete for `task`'s registry: trained or fine-tuned ones."""
        return [
            name
            for section in ("models", "finetune", "ensembles")
            for name, m in getattr(self, section).items()
            if m.task == task
        ]


def _check_space(name: str, study: HpoStudy, model: Any) -> list[str]:
    """Every searched param must exist for the model's kind and accept the space's bounds
    (or every choice): checked before any trial, with the key path."""
    if model is None or isinstance(model, Foreign):  # left out, or not validated here
        return []
    cls = type(model)
    tunable = sorted(set(cls.model_fields) - ROUTING_KEYS)
    problems = []
    for key, dim in study.space.items():
        where = f"hpo.{name}.space.{key}"
        if key not in tunable:
            problems.append(
                f"{where}: unknown param for kind {model.kind!r}, expected one of {tunable}"
            )
            continue
        for value in dim.corners():
            try:
                cls.model_validate({**model.model_dump(), key: value})
            except ValidationError as err:
                reason = err.errors()[0]
                rule = RULES.get(reason["type"])
                text = rule(reason.get("ctx", {})) if rule else reason["msg"]
                problems.append(f"{where}: {value!r} is not valid for models.{name}.{key}: {text}")
    return problems


def _over_limits(where: str, found: Any, limits: Limits) -> list[str]:
    """One line when a model's estimated footprint exceeds a cap, naming the model, the
    estimate (and what it was read from) and the cap."""
    if found is None:
        return []
    mb = found.activation_bytes / 2**20
    over = []
    if found.parameters > limits.max_params:
        over.append(
            f"{found.parameters:,} parameters, over limits.max_params = {limits.max_params:,}"
        )
    if mb > limits.max_activation_mb:
        over.append(
            f"{mb:,.0f} MB of activations per training step, over "
            f"limits.max_activation_mb = {limits.max_activation_mb:,}"
        )
    if not over:
        return []
    return [f"{where}: an estimated {' and '.join(over)} (from {found.basis})"]


# ---------------------------------------------------------------- loading and errors


class _Loader(yaml.SafeLoader):
    """params.yaml read as YAML 1.2, as DVC reads and writes it (`dvc exp run -S`, `dvc params
    diff`): `1e-6` is a float, not the string YAML 1.1 makes of it, and only true/false are
    booleans, so `yes`, `no`, `on` and `off` stay strings that strict params refuse, rather
    than flags DVC would show as text."""

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in found if tag != "tag:yaml.org,2002:bool"]
        for first, found in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _one_line_per_key(lines: list[str]) -> list[str]:
    """A value a union refuses gives one error per alternative; join them into one line:
    `max_features: must be <= 1.0, or must be one of 'sqrt' or 'log2', got 2.0`."""
    merged: dict[tuple[str, str], list[str]] = {}
    for line in lines:
        key, sep, rest = line.partition(": ")
        reason, got, value = rest.rpartition(", got ")
        if not sep or not got:
            merged[(line, "")] = []
            continue
        merged.setdefault((key, value), []).append(reason)
    return [
        key if not reasons else f"{key}: {', or '.join(reasons)}, got {value}"
        for (key, value), reasons in merged.items()
    ]


def load_params(path: str | Path = "params.yaml", *, only: str | None = None) -> Params:
    """Read and validate params.yaml; raise ParamsError listing every bad key. With `only`
    (a model, dataset or infer task, or `section.name`), entries of workloads other than its
    own keep their routing keys alone."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(), Loader=_Loader)  # a SafeLoader
    except FileNotFoundError as err:
        raise ParamsError(f"{path}: file not found") from err
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from err
    return parse_params(raw, source=str(path), only=only)


def parse_params(raw: Any, source: str = "params", *, only: str | None = None) -> Params:
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level")
    problems: list[str] = []
    typed = dict(raw)
    keep = _workload_of_name(raw, only) if only is not None else None
    known = workloads()
    for section in ENTRY_SECTIONS:
        entries = raw.get(section)
        if not isinstance(entries, dict):
            continue  # missing or malformed: the Params model says so
        typed[section] = {}
        for name, entry in entries.items():
            where = f"{section}.{name}"
            workload = entry.get("workload") if isinstance(entry, dict) else None
            if not isinstance(entry, dict):
                typed[section][name] = entry
            elif workload not in known:
                problems.append(
                    f"{where}.workload: "
                    + (
                        "required key is missing"
                        if workload is None
                        else f"unknown workload {workload!r}"
                    )
                    + f", expected one of {known}"
                )
            elif keep is not None and workload != keep:
                foreign = ForeignDataset if section == "datasets" else Foreign
                typed[section][name] = foreign.model_construct(**entry)
            elif "kind" in entry and entry["kind"] not in kinds(workload, section):
                problems.append(
                    f"{where}.kind: unknown kind {entry['kind']!r} for workload {workload!r}, "
                    f"expected one of {kinds(workload, section)}"
                )
            else:
                try:
                    typed[section][name] = _adapter(workload, section).validate_python(entry)
                except ValidationError as err:
                    problems += _one_line_per_key(
                        [
                            describe({**e, "loc": (section, name, *e["loc"])}, raw)
                            for e in err.errors()
                        ]
                    )
    if problems:
        raise ParamsError(
            "\n".join(f"{source}: {line}" for p in problems for line in p.splitlines())
        )
    try:
        return Params.model_validate(typed)
    except ValidationError as err:
        # a whole-file check reports several keys at once: one line (and prefix) each
        lines = [line for e in err.errors() for line in describe(e, raw).splitlines()]
        raise ParamsError("\n".join(f"{source}: {line}" for line in lines)) from None


def _workload_of_name(raw: dict, name: str) -> str:
    """The workload whose entries a process for `name` reads in full: the workload of the
    entry called `name` (or `section.name`); for a registry task, its models' workload (the
    gate may score the champion on the task's data); "" when there is none."""
    section, _, key = name.rpartition(".")
    for where in (section,) if section else (*ENTRY_SECTIONS, "infer"):
        entries = raw.get(where)
        entry = entries.get(key) if isinstance(entries, dict) else None
        if isinstance(entry, dict) and entry.get("workload"):
            return str(entry["workload"])
    for where in MODEL_SECTIONS:
        entries = raw.get(where)
        for entry in entries.values() if isinstance(entries, dict) else ():
            if isinstance(entry, dict) and entry.get("task") == key and entry.get("workload"):
                return str(entry["workload"])
    return ""
