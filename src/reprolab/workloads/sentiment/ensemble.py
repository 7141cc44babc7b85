"""`prob_average`: a weighted average of two sentiment models' class probabilities.

`fit` loads the two members' saved models (models/<member>, written by their own stages),
predicts the valid split with each and picks the weight `w` of the first member on a grid of
`grid_step` that maximises valid accuracy (ties: the weight closest to 0.5); `weight` in
params fixes it instead. P = w * P_first + (1 - w) * P_second. The saved MLflow pyfunc holds
copies of both members, so the registered model is self-contained."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Self

import mlflow.pyfunc
import numpy as np

from reprolab.core.model import Model, RunLogger, StepLogger
from reprolab.core.saving import save_pyfunc

CONFIG_FILE = "ensemble.json"


def member_dir(member: str) -> Path:
    from reprolab.core.errors import DataError
    from reprolab.core.layout import model_dir

    for candidate in (model_dir(member), Path(member)):
        if (candidate / "MLmodel").is_file():
            return candidate
    raise DataError(f"{model_dir(member)}: ensemble member not found; train {member} first")


def combine(probs: list[np.ndarray], weight: float) -> np.ndarray:
    return weight * np.asarray(probs[0], dtype=float) + (1 - weight) * np.asarray(
        probs[1], dtype=float
    )


class ProbAverage(Model):
    def __init__(self, params: Any, seed: int) -> None:
        super().__init__(params, seed)
        self.members: list[Any] = []
        self.dirs: list[Path] = []
        self.weight: float | None = None
        self.valid_scores: dict[str, float] = {}

    def fit(self, train: Any, valid: Any, run: StepLogger | None = None) -> Self:
        from reprolab.core import saving

        p = self.params
        self.dirs = [member_dir(m) for m in p.members]
        self.members = [saving.load_predictor(d) for d in self.dirs]
        probs = [np.asarray(m.predict(valid.X), dtype=float) for m in self.members]
        y = np.asarray(valid.y)
        for name, prob in zip(p.members, probs, strict=True):
            self.valid_scores[name] = float(np.mean(prob.argmax(1) == y))
        if p.weight is not None:
            self.weight = float(p.weight)
        else:
            grid = np.round(np.arange(0.0, 1.0 + 1e-9, p.grid_step), 6)
            scores = [float(np.mean(combine(probs, w).argmax(1) == y)) for w in grid]
            top = max(scores)
            ties = [w for w, s in zip(grid, scores, strict=True) if s == top]
            self.weight = float(min(ties, key=lambda w: abs(w - 0.5)))
            if run is not None:  # the valid accuracy along the grid, as a curve
                for i, (w, s) in enumerate(zip(grid, scores, strict=True)):
                    run.log_step(i, {"weight": float(w), "valid_accuracy": s})
        self.valid_scores["ensemble"] = float(np.mean(combine(probs, self.weight).argmax(1) == y))
        if isinstance(run, RunLogger):  # the chosen weight, not the grid's last point
            run.log_metrics(
                {"weight": self.weight, "valid_accuracy": self.valid_scores["ensemble"]}
            )
        return self

    def predict(self, inputs: Any) -> np.ndarray:
        if self.weight is None:
            raise RuntimeError("fit the model before predicting")
        return combine([m.predict(inputs) for m in self.members], self.weight)

    def save(self, path: Path, input_example: Any) -> None:
        from mlflow.models import infer_signature

        if self.weight is None:
            raise RuntimeError("fit the model before saving")
        config = {
            "members": list(self.params.members),
            "weight": self.weight,
            "valid_accuracy": self.valid_scores,
        }
        artifacts = {f"member{i}": str(d) for i, d in enumerate(self.dirs)}
        signature = None
        if input_example is not None:
            signature = infer_signature(input_example, self.predict(input_example))
        with tempfile.TemporaryDirectory() as tmp:
            config_file = Path(tmp) / CONFIG_FILE
            config_file.write_text(json.dumps(config, indent=2) + "\n")
            artifacts["config"] = str(config_file)
            save_pyfunc(
                path,
                python_model=ProbAveragePyfunc(),
                artifacts=artifacts,
                input_example=input_example,
                signature=signature,
                pip_requirements=_requirements(self.dirs),
            )


def _requirements(dirs: list[Path]) -> list[str]:
    """The wrapper's own needs and the union of the members' pinned requirements: the
    ensemble loads each member as the member itself would load."""
    from reprolab.core import requirements

    return requirements.union(
        requirements.pins(*requirements.PYFUNC), *(requirements.read(d) for d in dirs)
    )


class ProbAveragePyfunc(mlflow.pyfunc.PythonModel):
    """Serving wrapper: loads both members; (n, 2) averaged probabilities out."""

    def __getstate__(self) -> dict:
        # MLflow may load the model while saving it (input example): never pickle members
        return {}

    def load_context(self, context) -> None:
        from reprolab.core import saving

        config = json.loads(Path(context.artifacts["config"]).read_text())
        self.weight = float(config["weight"])
        self.members = [
            saving.load_predictor(context.artifacts[f"member{i}"])
            for i in range(len(config["members"]))
        ]

    def predict(self, context, model_input, params=None):
        return combine([m.predict(model_input) for m in self.members], self.weight)
