"""Fixtures for `reprolab serve`: a real MLflow store holding a tiny model of every registry
task under the alias `champion`, and the server itself run as a subprocess against it.

The tiny models are trained once per session (`tiny_models`, about half a minute); each test
module registers them in a store of its own (`served_store`, a few seconds), so a module that
moves an alias cannot change what another module's server sees."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reprolab.ops import devservers
from tests.tiny_models import (
    Case,
    llm_lora,
    minit,
    nsmc_models,
    nuclei_unet,
    pid_pidnet,
    wine_model,
)

REPO = Path(__file__).resolve().parents[2]
CHAMPION = "champion"
READY_TIMEOUT = 180.0
LOG_TAIL = 40


@dataclass(frozen=True)
class TinyModels:
    """The saved tiny models: one per registry task (`champions`), wine's second version and
    the Mini-T served as a static language model."""

    champions: dict[str, Case]
    wine_v2: Case
    minit: Case


@dataclass(frozen=True)
class ServedStore:
    """An MLflow store (`tracking_uri`, also the registry) under `root` in which every task of
    `champions` has version 1 as `champion`; `wine-quality` also has version `wine_v2`, with
    no alias. `minit_dir` is the Mini-T for `--lm minit=<dir>`."""

    tracking_uri: str
    root: Path
    minit_dir: Path
    wine_v2: str
    champions: dict[str, Case] = field(default_factory=dict)  # task -> its champion's model


# ---------------------------------------------------------------- the store


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> TinyModels:
    """Every family's tiny model, trained and saved once per session."""
    import torch

    root = tmp_path_factory.mktemp("serve-models")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: a second thread only adds waiting
    try:
        champions = {
            "wine-quality": wine_model(root / "v1", name="wine-rf", n_estimators=8, seed=0),
            "nsmc-sentiment": nsmc_models(root)[-1],  # the probability-average ensemble
            "nuclei-segmentation": nuclei_unet(root),
            "pid-control": pid_pidnet(root),
            "llm-sft": llm_lora(root),
        }
        wine_v2 = wine_model(root / "v2", name="wine-rf", n_estimators=12, seed=1)
        lm = minit(root)
    finally:
        torch.set_num_threads(threads)
    return TinyModels(champions=champions, wine_v2=wine_v2, minit=lm)


class _TrackingUri:
    """mlflow.set_tracking_uri for a block, then the previous state back: the module-level URI
    (which outranks MLFLOW_TRACKING_URI for later tests) and the variable it also sets."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def __enter__(self) -> None:
        import mlflow
        from mlflow.tracking._tracking_service import utils

        self.previous = utils._tracking_uri
        self.previous_env = os.environ.get("MLFLOW_TRACKING_URI")
        mlflow.set_tracking_uri(self.uri)

    def __exit__(self, *exc) -> None:
        import mlflow

        mlflow.set_tracking_uri(self.previous)  # None: unset, the variable with it
        if self.previous_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = self.previous_env


@pytest.fixture
def on_store(served_store) -> Iterator[ServedStore]:
    """MLflow pointed at the served store for one test. Setting MLFLOW_TRACKING_URI alone is
    not enough once any earlier test has called mlflow.set_tracking_uri: the module-level URI
    outranks the variable."""
    with _TrackingUri(served_store.tracking_uri):
        yield served_store


def register(client, experiment_id: str, task: str, case: Case) -> str:
    """`case`'s saved model logged by a run of its own and registered as a version of `task`,
    as reprolab's registry does; the version's number."""
    import mlflow

    with mlflow.start_run(experiment_id=experiment_id, run_name=case.name) as run:
        mlflow.set_tags({"reprolab.task": task, "reprolab.model": case.name})
        mlflow.log_artifacts(str(case.dir), "model")
    if not client.search_registered_models(filter_string=f"name = '{task}'"):
        client.create_registered_model(task)
    version = client.create_model_version(
        name=task,
        source=f"{run.info.artifact_uri}/model",
        run_id=run.info.run_id,
        tags={"reprolab.model": case.name},
    )
    return str(version.version)


@pytest.fixture(scope="module")
def served_store(tiny_models, tmp_path_factory) -> Iterator[ServedStore]:
    """A fresh SQLite store for the module: each task's tiny model as v1 `champion`, and a
    second wine version without an alias (a test promotes it while the server runs)."""
    import mlflow

    root = tmp_path_factory.mktemp("served-store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with _TrackingUri(uri):
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiment_id = client.create_experiment(
            "serve-fixtures", artifact_location=(root / "mlartifacts").as_uri()
        )
        for task, case in tiny_models.champions.items():
            version = register(client, experiment_id, task, case)
            client.set_registered_model_alias(task, CHAMPION, version)
        wine_v2 = register(client, experiment_id, "wine-quality", tiny_models.wine_v2)
    yield ServedStore(
        tracking_uri=uri,
        root=root,
        minit_dir=tiny_models.minit.dir,
        wine_v2=wine_v2,
        champions=dict(tiny_models.champions),
    )


# ---------------------------------------------------------------- params.yaml


def copy_params(folder: Path) -> Path:
    """The repository's params.yaml, unchanged, in `folder` (the server's working folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(REPO / "params.yaml", folder / "params.yaml"))


@pytest.fixture
def params_file(tmp_path) -> Path:
    return copy_params(tmp_path / "serve")


@pytest.fixture(scope="module")
def params_file_module(tmp_path_factory) -> Path:
    return copy_params(tmp_path_factory.mktemp("serve"))


# ---------------------------------------------------------------- the server


@dataclass
class Server:
    """A running `reprolab serve`: stop() (or leaving its `with` block) ends its process group."""

    proc: subprocess.Popen
    url: str
    token: str | None
    log: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token is not None else {}

    def log_tail(self, lines: int = LOG_TAIL) -> str:
        if not self.log.is_file():
            return ""
        with self.log.open(errors="replace") as text:
            return "".join(deque(text, maxlen=lines))

    def stop(self) -> None:
        devservers.stop(self.proc)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_server(
    store: ServedStore,
    params_file: Path,
    *args: str,
    env: dict[str, str] | None = None,
    token: str | None = "test-token",
) -> Server:
    """`reprolab serve` on a free port against `store`, from `params_file`'s folder, once its
    /ready answers 200 (RuntimeError with the log's tail if it does not within 180 s).
    `token` None: no REPROLAB_API_TOKEN at all; `env` is added last."""
    import httpx

    port = devservers.free_port()
    folder = params_file.parent
    command = [
        sys.executable,
        "-m",
        "reprolab",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--params",
        str(params_file),
        "--lm",
        f"minit={store.minit_dir}",
        # today's in-process path unless a test names another (the last --lm-backend wins)
        "--lm-backend",
        "transformers",
        *args,
    ]
    environ = {
        **os.environ,
        "MLFLOW_TRACKING_URI": store.tracking_uri,
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    environ.pop("REPROLAB_API_TOKEN", None)
    if token is not None:
        environ["REPROLAB_API_TOKEN"] = token
    environ.update(env or {})
    log = folder / f"serve-{port}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            command,
            cwd=folder,
            env=environ,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends it and its children
        )
    server = Server(proc=proc, url=f"http://127.0.0.1:{port}", token=token, log=log)
    try:
        devservers.wait_for(
            lambda: httpx.get(f"{server.url}/ready", timeout=2).status_code == 200,
            "reprolab serve",
            READY_TIMEOUT,
            proc,
        )
    except (RuntimeError, TimeoutError) as err:
        server.stop()
        raise RuntimeError(
            f"{err}\n$ {' '.join(command)}\nlast {LOG_TAIL} lines of {log}:\n{server.log_tail()}"
        ) from None
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def server(served_store, params_file_module) -> Iterator[Server]:
    """One server for the module, reloading aliases every half second."""
    with start_server(served_store, params_file_module, "--reload-interval", "0.5") as running:
        yield running
