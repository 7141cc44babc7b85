"""Every model family the pipelines save loads and predicts where reprolab is not installed.

A tiny model of each family (wine: random forest; nsmc: TF-IDF and the probability-average
ensemble; nuclei: U-Net; pid-control: PIDNet; Mini-T; a LoRA fine-tune of a tiny Llama) is
trained in-process and saved as the train stage saves it. Its prediction on the input example
saved with it is computed in this venv, then again in a fresh virtualenv (no system site
packages, reprolab not importable) built from the models' own requirements.txt files, one
process per model: the wrapper code must come from `<model>/code/reprolab`, the packages from
the pins. To keep CI time down, one virtualenv holds the union of the models' requirements
(the pins come from this one venv, so they agree); in it each model runs fenced
(portable_predict.py --fence): only what its own requirements bring can be imported, as if
the environment were its alone. The virtualenv is cached under pytest's cache, keyed by the
union (REPROLAB_PORTABLE_VENVS overrides where), so a re-run only predicts.

Then the wine model is served over HTTP by `mlflow models serve --env-manager virtualenv`
(MLflow builds the environment from the model's requirements with the pyenv Python the model
records) and answers /invocations like the in-venv model."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from reprolab.ops import devservers
from tests.tiny_models import Case, llm_lora, minit, nsmc_models, nuclei_unet, pid_pidnet, wine_rf

pytestmark = pytest.mark.slow

RUNNER = Path(__file__).resolve().parent / "portable_predict.py"
VENV_BUILD_TIMEOUT = 1800  # first build: torch, transformers, mlflow from the indexes
PREDICT_TIMEOUT = 300
SERVE_TIMEOUT = 1200  # first start: MLflow builds the serving virtualenv
RTOL, ATOL = 1e-6, 1e-8
# cases whose model carries MLflow's pytorch (torch nets) or transformers flavour (HF root)
OWN_FLAVOR = {"nuclei-unet", "pid-pidnet", "minit"}  # llm-lora: not merged


# ---------------------------------------------------------------- environments and runs


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would lead a child Python to this venv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"}
    }
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return {**env, "PYTHONNOUSERSITE": "1", **extra}


def cache_root(config: pytest.Config) -> Path:
    """Where built environments are kept between runs: REPROLAB_PORTABLE_VENVS, else pytest's
    cache (a temp folder when the cache plugin is off)."""
    import tempfile

    configured = os.environ.get("REPROLAB_PORTABLE_VENVS")
    if configured:
        return Path(configured)
    cache = getattr(config, "cache", None)
    if cache is None:
        return Path(tempfile.gettempdir()) / "reprolab-portable-venvs"
    return Path(cache.mkdir("portable-venvs"))


def requirement_union(cases: list[Case]) -> list[str]:
    from reprolab.core import requirements

    return requirements.union(*(requirements.read(c.dir) for c in cases))


def build_venv(root: Path, lines: list[str]) -> tuple[Path, float]:
    """A virtualenv with exactly `lines` installed (cached by their digest): its Python and
    how long building it took (0 when it came from the cache). Older builds are removed."""
    key = hashlib.sha256("\n".join([platform.python_version(), *lines]).encode()).hexdigest()
    env, python = root / key[:16], root / key[:16] / "bin" / "python"
    if (env / "ready").is_file():
        return python, 0.0
    for old in root.iterdir():
        shutil.rmtree(old, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "venv", str(env)], check=True, env=clean_env(), timeout=300
    )
    (env / "requirements.txt").write_text("\n".join(lines) + "\n")
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(env / "requirements.txt")],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=VENV_BUILD_TIMEOUT,
    )
    assert pip.returncode == 0, f"pip install -r {env / 'requirements.txt'}:\n{pip.stderr[-4000:]}"
    seconds = time.perf_counter() - started
    (env / "ready").write_text(f"{seconds:.0f} s\n")
    return python, seconds


def run_case(python: Path, case: Case, workdir: Path) -> dict[str, Any]:
    """The case predicted by `python` in a process of its own, from `workdir`, fenced to what
    the model's requirements bring."""
    spec, out = workdir / f"{case.name}.case.json", workdir / f"{case.name}.out.json"
    spec.write_text(json.dumps(case.spec()))
    done = subprocess.run(
        [str(python), str(RUNNER), str(spec), str(out), "--fence"],
        cwd=workdir,
        env=clean_env(MLFLOW_DISABLE_TELEMETRY="true"),
        capture_output=True,
        text=True,
        timeout=PREDICT_TIMEOUT,
    )
    assert done.returncode == 0, f"{case.name} in {python}:\n{done.stderr[-4000:]}"
    return json.loads(out.read_text())


def reference(case: Case) -> dict[str, Any]:
    """The case predicted in this process, through the same code as the child runs."""
    spec = importlib.util.spec_from_file_location("portable_predict", RUNNER)
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    return runner.predict(case.spec())


def assert_same(got: dict[str, Any], want: dict[str, Any], name: str) -> None:
    assert got.keys() == want.keys(), name
    if "array" in want:
        np.testing.assert_allclose(
            np.asarray(got["array"]), np.asarray(want["array"]), rtol=RTOL, atol=ATOL, err_msg=name
        )
    else:
        pd.testing.assert_frame_equal(
            pd.DataFrame(**got["frame"]), pd.DataFrame(**want["frame"]), rtol=RTOL, atol=ATOL
        )


def assert_pinned(imports: dict[str, list[str]], case: Case) -> None:
    """Every third-party module the wrapper code imported is provided by a pinned project."""
    from reprolab.core.requirements import canonical, read

    pinned = {canonical(line) for line in read(case.dir)}
    missing = {
        module: providers
        for module, providers in imports.items()
        if module not in case.unpinned and not pinned & set(providers)
    }
    assert not missing, f"{case.name}: imported but not in requirements.txt: {missing}"


def assert_portable_layout(case: Case) -> None:
    """What each saved model must carry: a signature, an input example, requirements that pin
    mlflow and never reprolab, and (a wrapper) the package source without bytecode."""
    import yaml

    mlmodel = yaml.safe_load((case.dir / "MLmodel").read_text())
    if case.frame is None:  # families whose save path gets an input example from train
        assert mlmodel.get("signature"), f"{case.name}: no signature"
        assert mlmodel.get("saved_input_example_info"), f"{case.name}: no input example"
    lines = (case.dir / "requirements.txt").read_text().split()
    assert any(x.startswith("mlflow==") for x in lines), (case.name, lines)
    assert not any(x.split("==")[0] == "reprolab" for x in lines), (case.name, lines)
    code = case.dir / "code" / "reprolab"
    assert (code / "__init__.py").is_file() == case.wrapper, case.name
    assert not [p for p in case.dir.rglob("*") if p.suffix == ".pyc" or p.name == "__pycache__"]


# ---------------------------------------------------------------- fixtures and tests


@pytest.fixture(scope="module")
def wine(tmp_path_factory) -> Case:
    return wine_rf(tmp_path_factory.mktemp("wine"))


@pytest.fixture(scope="module")
def cases(wine, tmp_path_factory) -> list[Case]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: a second thread only adds waiting
    root = tmp_path_factory.mktemp("portable")
    try:
        built = [wine, *nsmc_models(root), nuclei_unet(root), pid_pidnet(root), minit(root)]
        built.append(llm_lora(root))
    finally:
        torch.set_num_threads(threads)
    return built


def test_every_family_predicts_in_a_clean_virtualenv(cases, tmp_path, request):
    for case in cases:
        assert_portable_layout(case)
    expected = {case.name: reference(case) for case in cases}

    venvs = cache_root(request.config) / "venvs"
    venvs.mkdir(parents=True, exist_ok=True)
    python, seconds = build_venv(venvs, requirement_union(cases))
    request.node.user_properties.append(("venv_build_s", round(seconds)))
    bare = subprocess.run(
        [str(python), "-c", "import reprolab"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
    )
    assert bare.returncode != 0 and "No module named 'reprolab'" in bare.stderr

    for case in cases:
        got = run_case(python, case, tmp_path)
        assert_same(got["output"], expected[case.name]["output"], case.name)
        if case.name in OWN_FLAVOR:  # MLflow's own flavour loads there too, and agrees
            want = expected[case.name]["flavor"]
            assert want is not None and got["flavor"] is not None, case.name
            if "text" in want:
                assert got["flavor"] == want, case.name
            else:
                assert_same(got["flavor"], want, case.name)
        if case.wrapper:  # the code came with the model, not from anywhere else
            assert Path(got["code"]).is_relative_to(case.dir / "code" / "reprolab"), got["code"]
        else:
            assert got["code"] is None, (case.name, got["code"])
        assert_pinned(got["imports"], case)


def _pyenv_has(version: str) -> bool:
    """MLflow's virtualenv manager takes the model's Python from pyenv; one it must compile
    would take far longer than this test may."""
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return False
    done = subprocess.run([pyenv, "prefix", version], capture_output=True, env=clean_env())
    return done.returncode == 0


def test_wine_model_serves_over_http_from_its_own_virtualenv(wine, tmp_path, request):
    import httpx
    import yaml

    python = yaml.safe_load((wine.dir / "python_env.yaml").read_text())["python"]
    if not _pyenv_has(python):
        pytest.skip(f"pyenv with Python {python} is needed by --env-manager virtualenv")
    frame = pd.DataFrame(
        **json.loads((wine.dir / "serving_input_example.json").read_text())["dataframe_split"]
    )
    want = reference(Case(wine.name, wine.dir, frame=frame))["output"]["array"]

    port, log = devservers.free_port(), tmp_path / "serve.log"
    env = clean_env(
        MLFLOW_ENV_ROOT=str(cache_root(request.config) / "mlflow-envs"),
        MLFLOW_DISABLE_TELEMETRY="true",
    )
    mlflow_cli = [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(wine.dir)]
    options = ["--env-manager", "virtualenv", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as sink:
        server = subprocess.Popen(
            [*mlflow_cli, *options, "--workers", "1"],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            devservers.wait_for(
                lambda: httpx.get(f"{url}/ping", timeout=2).status_code == 200,
                "mlflow models serve",
                SERVE_TIMEOUT,
                server,
            )
        except (RuntimeError, TimeoutError) as err:
            pytest.fail(f"{err}:\n{log.read_text()[-4000:]}")
        payload = {"dataframe_split": json.loads(frame.to_json(orient="split"))}
        answer = httpx.post(f"{url}/invocations", json=payload, timeout=60)
        assert answer.status_code == 200, answer.text
        got = answer.json()["predictions"]
    finally:
        devservers.stop(server)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=RTOL, atol=ATOL)
