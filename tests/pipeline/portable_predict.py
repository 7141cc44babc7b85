"""Load one saved MLflow model and predict on its input; run by test_portable_models.py with
the interpreter of the environment under test (the project's, or a clean virtualenv without
reprolab), one process per model so that no model finds code another one brought. It imports
nothing from the project itself.

usage: python portable_predict.py CASE.json OUT.json [--fence]

With --fence, only the distributions that the model's requirements.txt pins, and what they
require in turn, can be imported: one environment holding several models' requirements then
behaves, for each model, as if it held that model's alone.

CASE.json: {"name", "dir", "frame" (a pandas "split" dict, or null: the input example MLflow
saved with the model), "params" (or null)}. OUT.json: {"output": the prediction as JSON,
"flavor": what MLflow's own flavour gives, loaded with `mlflow.pytorch.load_model` (the
network's output on the input example saved with its export) or `mlflow.transformers.
load_model` (the pipeline's greedy completion of a fixed prompt); null for other models,
"code": the file reprolab was imported from while loading (null when the model needed none),
"imports": {module: its distributions} for each third-party module that reprolab's code
imported while loading and predicting (what the model's requirements must pin)}."""

from __future__ import annotations

import builtins
import contextlib
import json
import sys
import warnings
from pathlib import Path

PROJECT = "reprolab"


@contextlib.contextmanager
def audit_imports(found: set[str]):
    """Collect the top-level third-party modules that the project's own modules import."""
    original = builtins.__import__

    def recording(name, globals=None, locals=None, fromlist=(), level=0):
        importer = ((globals or {}).get("__name__") or "").partition(".")[0]
        top = name.partition(".")[0]
        third_party = top not in sys.stdlib_module_names and top != PROJECT
        if level == 0 and importer == PROJECT and third_party:
            found.add(top)
        return original(name, globals, locals, fromlist, level)

    builtins.__import__ = recording
    try:
        yield found
    finally:
        builtins.__import__ = original


def distributions(modules: set[str]) -> dict[str, list[str]]:
    """Each module with the installed distributions that provide it (PIL: pillow; mlflow:
    mlflow, mlflow-skinny, ...), names normalised."""
    from importlib.metadata import packages_distributions

    provided = packages_distributions()
    return {m: sorted({_canonical(d) for d in provided.get(m, [m])}) for m in sorted(modules)}


def _canonical(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def allowed(requirement_lines: list[str]) -> set[str]:
    """The pinned distributions and, transitively, what they require (extras and markers as
    pip would resolve them here), as canonical names."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement

    todo, seen = [Requirement(line) for line in requirement_lines], set()
    while todo:
        req = todo.pop()
        key = (_canonical(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = distribution(req.name).requires or []
        except PackageNotFoundError:
            continue
        for line in requires:
            sub = Requirement(line)
            extras = req.extras or {""}
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    return {name for name, _ in seen}


class Fence:
    """The one meta path finder: it asks the original finders, except for the hidden
    top-level modules (not found, as if not installed) and hides the hidden distributions'
    metadata too, so that probes such as `importlib.util.find_spec` see them absent."""

    def __init__(self, finders: list, modules: set[str], dists: set[str]) -> None:
        self.finders, self.modules, self.dists = finders, modules, dists

    def find_spec(self, name, path=None, target=None):
        if path is None and name in self.modules:
            return None
        for finder in self.finders:
            spec = getattr(finder, "find_spec", lambda *a: None)(name, path, target)
            if spec is not None:
                return spec
        return None

    def find_distributions(self, *args, **kwargs):
        for finder in self.finders:
            for dist in getattr(finder, "find_distributions", lambda *a, **k: [])(*args, **kwargs):
                if _canonical(dist.metadata["Name"] or "") not in self.dists:
                    yield dist

    def invalidate_caches(self) -> None:
        for finder in self.finders:
            getattr(finder, "invalidate_caches", lambda: None)()


def fence(model_dir: str) -> None:
    """Hide every module that the model's requirements do not bring (see the usage)."""
    from importlib.metadata import distributions, packages_distributions

    lines = (Path(model_dir) / "requirements.txt").read_text().split()
    ok = allowed([x for x in lines if not x.startswith("-")])
    hidden = {_canonical(d.metadata["Name"]) for d in distributions()} - ok
    modules = {
        module
        for module, providers in packages_distributions().items()
        if not ok & {_canonical(p) for p in providers}
    }
    sys.meta_path[:] = [Fence(list(sys.meta_path), modules - set(sys.modules), hidden)]


def _inputs(case: dict):
    import pandas as pd
    from mlflow.models import Model

    if case["frame"] is not None:
        return pd.DataFrame(**case["frame"])
    return Model.load(case["dir"]).load_input_example(case["dir"])


def _jsonable(output) -> dict:
    import numpy as np
    import pandas as pd

    if isinstance(output, pd.DataFrame):
        return {"frame": output.to_dict(orient="split")}
    return {"array": np.asarray(output).tolist()}


def predict(case: dict) -> dict:
    import mlflow.pyfunc

    with audit_imports(set()) as imported, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mlflow.pyfunc.load_model(case["dir"])
        output = model.predict(_inputs(case), params=case["params"])
    return {
        "output": _jsonable(output),
        "flavor": predict_flavor(case["dir"]),
        "code": getattr(sys.modules.get(PROJECT), "__file__", None),
        "imports": distributions(imported),
    }


def predict_flavor(model_dir: str) -> dict | None:
    """The model through MLflow's own flavour (pytorch or transformers), if it has one."""
    from mlflow.models import Model

    flavors = Model.load(model_dir).flavors
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "pytorch" in flavors:
            return {"array": _net_output(model_dir, flavors["pytorch"])}
        if "transformers" in flavors:
            import mlflow.transformers

            pipe = mlflow.transformers.load_model(model_dir)
            done = pipe("Hello", max_new_tokens=4, do_sample=False, return_full_text=False)
            return {"text": done[0]["generated_text"]}
    return None


def _net_output(model_dir: str, flavor: dict) -> list:
    import mlflow.pytorch
    import torch
    from mlflow.models import Model

    net = mlflow.pytorch.load_model(model_dir)
    exported = str(Path(model_dir) / Path(flavor["model_data"]).parent)
    example = Model.load(exported).load_input_example(exported)
    with torch.no_grad():
        return net(torch.from_numpy(example)).numpy().tolist()


def main(case_file: str, out_file: str, *options: str) -> None:
    case = json.loads(Path(case_file).read_text())
    if "--fence" in options:
        fence(case["dir"])
    Path(out_file).write_text(json.dumps(predict(case)))


if __name__ == "__main__":
    main(*sys.argv[1:])
