"""One `Run` per stage execution, logging to dvclive (for `dvc exp show / metrics diff /
plots`) and MLflow (for the UI and the registry) at once, each metric once per backend. Every
MLflow run carries lineage tags so that its exact model can be fetched again later."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from reprolab.core import interrupts
from reprolab.core.errors import ReprolabError
from reprolab.core.io import atomic_write_json
from reprolab.core.layout import TIMINGS_FILE
from reprolab.core.metrics import flatten, is_timing
from reprolab.core.paths import mlflow_tracking_uri
from reprolab.core.tracking_store import client, experiment_id, unreachable, with_lock_retry

TAG = "reprolab."  # prefix of every lineage tag
# what a model is built from: code, the pipeline, params and pinned dependencies. Docs, tests
# and the outputs `dvc repro` itself rewrites (dvc.lock, reports/, models/, data/) never make a
# run dirty, so editing the README while a pipeline runs leaves its lineage clean.
_BUILD_PATHS = (
    ":(top)src",
    ":(top)stages",
    ":(top)dvc.yaml",
    ":(top,glob)params*.yaml",
    ":(top)pyproject.toml",
    ":(top,glob)requirements*",
)


def _git(*args: str, cwd: Path | None = None, strip: bool = True) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return ""
    return done.stdout.strip() if strip else done.stdout


def uncommitted_paths(cwd: Path | None = None) -> list[str]:
    """Files a model is built from (code, pipeline, params, pins) that differ from HEAD.

    Untracked ones count too: a new module or a params file the commit lacks means the
    commit alone cannot rebuild the run (ignored files such as bytecode never show)."""
    changes = _git(
        "status",
        "--porcelain",
        "--untracked-files=all",
        "--",
        *_BUILD_PATHS,
        cwd=cwd,
        strip=False,  # each line is "XY path": a leading space is part of the status
    )
    return [line[3:] for line in changes.splitlines() if line.strip()]


def git_state(cwd: Path | None = None) -> dict[str, str]:
    """Commit of the workspace and whether code or params differ from it."""
    commit = _git("rev-parse", "HEAD", cwd=cwd) or "unknown"
    return {"git_commit": commit, "git_dirty": str(bool(uncommitted_paths(cwd))).lower()}


class TrackingError(ReprolabError):
    """The MLflow tracking server cannot be reached; the message names it and the run."""


@contextlib.contextmanager
def _no_retries() -> Iterator[None]:
    """One attempt per request: used to mark a run FAILED when the server may be gone."""
    saved = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MLFLOW_HTTP_REQUEST_MAX_RETRIES", None)
        else:
            os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = saved


class Run:
    """Context manager: an MLflow run (new, or resumed by id) plus an optional dvclive dir.

    A failure inside the block marks the MLflow run FAILED and re-raises. If the tracking
    server is unreachable (at the start, mid-run or at the end) the run is marked FAILED when
    one quick attempt still gets through, and a TrackingError naming the server is raised.
    """

    def __init__(
        self,
        experiment: str,
        run_name: str,
        live_dir: Path | None = None,
        resume_run_id: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.experiment = experiment
        self.run_name = run_name
        self.live_dir = live_dir
        self.resume_run_id = resume_run_id
        self.tags = tags or {}
        self.live = None
        self.run_id = ""
        self.timings: dict[str, float] = {}  # written to live_dir/timings.json at the end
        self._signals = None

    def __enter__(self) -> Run:
        try:
            return self._start()
        except Exception as err:
            if unreachable(err):
                raise TrackingError(
                    f"MLflow tracking server {mlflow_tracking_uri()} unreachable: cannot start "
                    f"run {self.run_name}"
                ) from err
            raise

    def _start(self) -> Run:
        import mlflow

        exp_id = experiment_id(self.experiment)
        reap_stale(exp_id)
        if self.resume_run_id:
            active = with_lock_retry(mlflow.start_run, run_id=self.resume_run_id)
        else:
            active = with_lock_retry(mlflow.start_run, experiment_id=exp_id, run_name=self.run_name)
        self.run_id = active.info.run_id
        # a resumed run keeps the lineage of the execution that created it
        tags = self.tags if self.resume_run_id else {**base_tags(), **self.tags}
        tags = {**tags, **interrupts.process_tags()}  # who owns the run while it is RUNNING
        with_lock_retry(
            mlflow.set_tags, {k if k.startswith(TAG) else TAG + k: v for k, v in tags.items()}
        )
        if self.live_dir is not None:
            from dvclive import Live

            self.live = Live(
                str(self.live_dir), dvcyaml=False, save_dvc_exp=False, report=None, resume=False
            )
        self._signals = interrupts.stop_on_signals()
        self._signals.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        import mlflow

        if self._signals is not None:
            self._signals.__exit__(None, None, None)
        if exc is None:
            interrupts.clear_incomplete(self.live_dir)
            if self.live_dir is not None:
                stage = {"stage_seconds": round(stage_seconds(), 2)}
                atomic_write_json(Path(self.live_dir) / TIMINGS_FILE, {**self.timings, **stage})
        else:
            interrupts.mark_incomplete(self.live_dir, f"run {self.run_id}: {exc!r}")
        try:
            if self.live is not None and exc is None:
                self.live.end()
        finally:
            if exc is None:
                try:
                    with_lock_retry(mlflow.end_run, "FINISHED")
                except Exception as err:
                    if not unreachable(err):
                        raise
                    raise self._lost(err, marked=False) from err
            elif unreachable(exc):
                raise self._lost(exc, marked=self._fail(exc)) from exc
            else:
                self._fail(exc)

    def _fail(self, exc: BaseException) -> bool:
        """Tag the error and end the run FAILED (KILLED when the stage was stopped by a
        signal or Ctrl-C); False when the store cannot be reached."""
        import mlflow

        with _no_retries() if unreachable(exc) else contextlib.nullcontext():
            try:
                with_lock_retry(
                    mlflow.set_tag, TAG + "error", f"{type(exc).__name__}: {exc}"[:5000]
                )
            except Exception as err:
                if not unreachable(err):
                    raise
            try:
                status = "KILLED" if interrupts.killed(exc) else "FAILED"
                with_lock_retry(mlflow.end_run, status)  # pops the local run even if it fails
            except Exception as err:
                if not unreachable(err):
                    raise
                return False
        return True

    def _lost(self, exc: BaseException, marked: bool) -> TrackingError:
        state = "marked FAILED" if marked else "left RUNNING there (server unreachable)"
        first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        return TrackingError(
            f"MLflow tracking server {mlflow_tracking_uri()} went away during run "
            f"{self.run_id} ({self.run_name}): {state}; the stage failed and registered nothing"
            f"\n{first}"
        )

    # ------------------------------------------------------------------ logging

    def log_params(self, params: dict[str, Any]) -> None:
        """MLflow only: DVC already tracks params.yaml (and shows it in `dvc exp show`)."""
        import mlflow

        with_lock_retry(mlflow.log_params, _flatten_params(params))

    def log_step(self, step: int, metrics: dict[str, float]) -> None:
        """Step-wise curve points: dvclive plots and MLflow metric history (timings such as
        tokens_per_s only in MLflow: dvclive would put their last value in metrics.json)."""
        import mlflow

        if self.live is not None:
            self.live.step = step
            for name, value in metrics.items():
                if not is_timing(name):
                    self.live.log_metric(name, value)
            self.live.next_step()
        with_lock_retry(mlflow.log_metrics, metrics, step=step)

    def log_metrics(self, metrics: dict, mlflow_prefix: str = "", live: bool = True) -> None:
        """Final metrics (nested dicts allowed): dvclive's metrics.json (unless `live` is
        False) and MLflow, where `mlflow_prefix="test"` gives `test_rmse` and `test_red/rmse`.
        Timings (`is_timing`) go to MLflow and timings.json instead of metrics.json."""
        import mlflow

        flat = flatten(metrics, sep="/")  # {"red": {"rmse": x}} -> "red/rmse"
        prefix = f"{mlflow_prefix}_" if mlflow_prefix else ""
        for name, value in flat.items():
            if is_timing(name):
                self.timings[name] = value  # unprefixed, as in metrics.json
            elif self.live is not None and live:
                self.live.log_metric(name, value, plot=False)
        with_lock_retry(mlflow.log_metrics, {prefix + name: value for name, value in flat.items()})

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        import mlflow

        if Path(path).is_dir():
            mlflow.log_artifacts(str(path), artifact_path)
        else:
            mlflow.log_artifact(str(path), artifact_path)

    def log_model_dir(self, path: Path, kind: str, name: str = "model") -> str:
        """Log a saved MLflow model directory as a Logged Model of this run (MLflow 3's
        Models view, linked to the run and later to its registry versions) with exactly the
        bytes DVC tracks: the files are uploaded as they are, not saved again. Returns the
        model id that registry versions point to (`models:/<model_id>`)."""
        import mlflow
        from mlflow.entities import LoggedModelOutput

        mlflow_client = client()
        run = with_lock_retry(mlflow_client.get_run, self.run_id)
        made = with_lock_retry(
            mlflow_client.create_logged_model,
            experiment_id=run.info.experiment_id,
            name=name,
            source_run_id=self.run_id,
            model_type=kind,
        )
        try:
            mlflow_client.log_model_artifacts(made.model_id, str(path))
        except BaseException:
            with_lock_retry(mlflow_client.finalize_logged_model, made.model_id, "FAILED")
            raise
        with_lock_retry(mlflow_client.finalize_logged_model, made.model_id, "READY")
        with_lock_retry(
            mlflow_client.log_outputs, self.run_id, [LoggedModelOutput(made.model_id, step=0)]
        )
        with_lock_retry(mlflow.set_tag, TAG + "model_id", made.model_id)
        return made.model_id

    def log_dataset(self, name: str, path: Path, digest: str, context: str) -> None:
        """Record a dataset split as a run input (MLflow's Datasets), its DVC md5 as digest,
        so the UI shows which exact data a run saw."""
        import warnings

        import mlflow
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset

        with warnings.catch_warnings():  # "can be interpreted in multiple ways": a local path
            warnings.simplefilter("ignore")
            source = resolve_dataset_source(Path(path).resolve().as_posix())
        dataset = MetaDataset(source=source, name=name, digest=digest)
        with_lock_retry(mlflow.log_input, dataset, context=context)

    def set_tags(self, tags: dict[str, str]) -> None:
        import mlflow

        with_lock_retry(mlflow.set_tags, {TAG + k: str(v) for k, v in tags.items()})


def stage_seconds() -> float:
    """Wall-clock seconds since this process started: the stage's own time, imports and data
    loading included."""
    import psutil

    return time.time() - psutil.Process().create_time()


def reap_stale(exp_id: str) -> None:
    """Mark KILLED the runs of this host left RUNNING by a process that is gone (SIGKILL):
    their stage can never end them, and RUNNING would read as work in progress."""
    mlflow_client = client()
    host = interrupts.host()
    query = f"attributes.status = 'RUNNING' and tags.`{TAG}host` = '{host}'"
    for run in with_lock_retry(mlflow_client.search_runs, [exp_id], query, max_results=200):
        tags = run.data.tags
        pid = tags.get(TAG + "pid", "")
        if not pid.isdigit() or interrupts.is_alive(int(pid), tags.get(TAG + "pid_start", "")):
            continue
        reason = f"process {pid} on {host} ended without closing the run (killed?)"
        with_lock_retry(mlflow_client.set_tag, run.info.run_id, TAG + "error", reason)
        with_lock_retry(mlflow_client.set_terminated, run.info.run_id, "KILLED")


def base_tags() -> dict[str, str]:
    """Lineage every run carries: git commit, dirty flag, DVC experiment name."""
    return {**git_state(), "dvc_exp": os.environ.get("DVC_EXP_NAME", "")}


def _flatten_params(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(_flatten_params(value, name))
        else:
            flat[name] = str(value)
    return flat
