"""What a saved model carries so that it loads without reprolab installed: the package source
(no bytecode, the same bytes each save), complete pins that never name reprolab, a signature
and an input example. The clean-virtualenv proof is tests/pipeline/test_portable_models.py."""

from __future__ import annotations

import filecmp
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

import reprolab
from reprolab.core import requirements

torch = pytest.importorskip("torch")

SOURCE = Path(reprolab.__file__).parent
FRAME = pd.DataFrame(np.arange(12, dtype=float).reshape(3, 4), columns=list("abcd"))


def save_mlp(path: Path) -> Path:
    from reprolab.core import torch_pyfunc
    from reprolab.workloads.wine.torch_mlp import MLP, MLPPyfunc

    config = {"features": list(FRAME.columns), "hidden": [3], "dropout": 0.0}
    module = MLP(4, config["hidden"], 0.0).eval()
    torch_pyfunc.save(path, module, config, MLPPyfunc(), FRAME.head(2), torch.zeros(1, 4))
    return path


def source_files(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def test_wrapper_model_carries_the_package_source_without_bytecode(tmp_path):
    model = save_mlp(tmp_path / "m")
    code = model / "code" / "reprolab"
    shipped = sorted(p.relative_to(code).as_posix() for p in code.rglob("*") if p.is_file())
    assert shipped == source_files(SOURCE)
    assert not [p for p in model.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"]
    mlmodel = yaml.safe_load((model / "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"]["code"] == "code"
    assert mlmodel["signature"] and mlmodel["saved_input_example_info"]


def test_torch_model_has_the_pytorch_flavour_over_one_copy_of_the_weights(tmp_path):
    import mlflow.pytorch

    from reprolab.core.saving import load_predictor

    model = save_mlp(tmp_path / "m")
    flavors = yaml.safe_load((model / "MLmodel").read_text())["flavors"]
    assert flavors["pytorch"]["model_data"] == "artifacts/net/data"
    assert flavors["pytorch"]["input_shape"] == [-1, 4]  # any batch, though traced with one row
    assert [p.name for p in model.rglob("*.pt*")] == ["model.pt2"]  # no weights.pt beside it
    net = mlflow.pytorch.load_model(str(model))
    rows = torch.tensor(FRAME.to_numpy(), dtype=torch.float32)
    served = load_predictor(model).predict(FRAME)
    np.testing.assert_allclose(net(rows).detach().numpy().ravel(), np.ravel(served), rtol=1e-6)


def test_torch_model_saved_before_the_pytorch_flavour_still_loads(tmp_path):
    """Registered versions saved with `artifacts/weights.pt` stay loadable (rollback)."""
    from reprolab.core import torch_pyfunc
    from reprolab.workloads.wine.torch_mlp import MLP

    module = MLP(4, [3], 0.0)
    torch.save(module.state_dict(), tmp_path / "weights.pt")

    context = SimpleNamespace(artifacts={"weights": str(tmp_path / "weights.pt")})
    loaded = torch_pyfunc.load_weights(MLP(4, [3], 0.0), context)
    for name, value in module.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value)


def test_shipped_code_is_the_same_bytes_each_save(tmp_path):
    a, b = save_mlp(tmp_path / "a") / "code", save_mlp(tmp_path / "b") / "code"
    compared = filecmp.dircmp(a, b)
    assert not (compared.left_only or compared.right_only or compared.diff_files)
    for name in source_files(a):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_torch_pins_are_complete_and_never_name_the_project(tmp_path):
    lines = (save_mlp(tmp_path / "m") / "requirements.txt").read_text().split()
    names = [requirements.canonical(x) for x in lines]
    assert {"mlflow", "torch", "numpy", "pandas"} <= set(names)
    assert "reprolab" not in names
    assert all("==" in x and "+" not in x for x in lines), lines  # torch==2.13.0, not +cpu


def test_sklearn_model_pins_skops_and_has_a_signature(tmp_path):
    from types import SimpleNamespace

    from reprolab import workloads
    from reprolab.workloads.wine.params import RidgeParams

    split = SimpleNamespace(X=FRAME, y=np.array([1.0, 2.0, 3.0]))
    model = workloads.build(
        RidgeParams(workload="wine", kind="ridge", dataset="d", task="t"), 0
    ).fit(split, split)
    model.save(tmp_path / "m", input_example=FRAME.head(2))
    names = {requirements.canonical(x) for x in requirements.read(tmp_path / "m")}
    assert set(map(requirements.canonical, requirements.SKLEARN)) <= names
    mlmodel = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    assert mlmodel["signature"] and mlmodel["saved_input_example_info"]
    assert not (tmp_path / "m" / "code").exists()  # a plain flavour: no project code needed


def test_requirements_naming_the_project_are_refused(tmp_path):
    from reprolab.core.saving import save_pyfunc
    from reprolab.workloads.wine.torch_mlp import MLPPyfunc

    with pytest.raises(ValueError, match="must not name reprolab"):
        save_pyfunc(tmp_path / "m", python_model=MLPPyfunc(), pip_requirements=["reprolab==0.1"])
    assert not (tmp_path / "m").exists()


def test_pins_drop_local_tags_and_repeat_nothing():
    from importlib.metadata import version

    pinned = requirements.pins("numpy", "NumPy", "torch")
    assert pinned == [f"numpy=={version('numpy')}", f"torch=={version('torch').split('+')[0]}"]


def test_union_merges_members_and_refuses_conflicts():
    merged = requirements.union(["numpy==2.0", "scikit_learn==1.0"], ["scikit-learn==1.0", ""])
    assert merged == ["numpy==2.0", "scikit_learn==1.0"]
    with pytest.raises(ValueError, match="conflicting requirements for numpy"):
        requirements.union(["numpy==2.0"], ["numpy==2.1"])
