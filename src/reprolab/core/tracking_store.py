"""The MLflow store every stage logs to: the client on the repository's tracking URI, the
SQLite settings and lock retries that let parallel `dvc exp` workers share one file, and
experiments whose artifacts live at the repository root, wherever the checkout is copied."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from reprolab.core.paths import mlflow_artifact_root, mlflow_tracking_uri, repo_root

# A tracking server that went away should fail a stage in seconds, not after MLflow's default
# of 7 retries with exponential backoff (minutes). Users may still set their own values.
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}

LOCK_RETRIES = 8  # "database is locked" despite the busy timeout: back off and retry


def sqlite_path(uri: str) -> Path | None:
    """The file behind a `sqlite:///` URI (None for servers and in-memory stores)."""
    if not uri.startswith("sqlite:///") or uri.endswith(":memory:"):
        return None
    return Path(uri.removeprefix("sqlite:///"))


@contextlib.contextmanager
def _init_lock(db: Path) -> Iterator[None]:
    """One process at a time creates and migrates a new store (a race otherwise)."""
    import fcntl

    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + "-init.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare_sqlite(db: Path) -> None:
    """WAL journal (readers never block the writer; persistent in the file) and a long
    busy timeout, so parallel `dvc exp` workers can share one store."""
    with contextlib.closing(sqlite3.connect(db, timeout=60)) as conn:
        conn.execute("PRAGMA busy_timeout = 60000")
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")


def with_lock_retry(call: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run an MLflow call, retrying with backoff while SQLite reports a lock; a stop signal
    waits until the call is done (interrupts.shielded)."""
    from reprolab.core.interrupts import shielded

    for attempt in range(LOCK_RETRIES):
        try:
            with shielded():
                return call(*args, **kwargs)
        except Exception as err:
            if "database is locked" not in str(err) or attempt == LOCK_RETRIES - 1:
                raise
            time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


# (table, column) pairs where MLflow's SQLite schema stores artifact URIs
_URI_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
    ("model_versions", "source"),
)


def _foreign_roots(conn: sqlite3.Connection, root: str) -> set[str]:
    """Artifact roots (`.../mlartifacts`) that the store's experiments name, other than `root`.

    Each experiment we create lives at `<artifact root>/<experiment name>`, so the root it was
    created under is its location less the name."""
    found = set()
    for name, location in conn.execute("SELECT name, artifact_location FROM experiments"):
        suffix = f"/{name}"
        if location and location.startswith("file://") and location.endswith(suffix):
            base = location[: -len(suffix)]
            if base.endswith("/mlartifacts") and base != root:
                found.add(base)
    return found


def relocate(db: Path, root: str) -> int:
    """Point a checkout's own store at its own artifacts after the checkout was copied or
    moved: MLflow records absolute `file://` URIs, so a copy would otherwise keep writing
    into, and reading from, the original's `mlartifacts/`. Returns the rows rewritten."""
    with contextlib.closing(sqlite3.connect(db, timeout=60)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "experiments" not in tables:
            return 0
        changed = 0
        for old in _foreign_roots(conn, root):
            for table, column in _URI_COLUMNS:
                if table not in tables:
                    continue
                if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
                    continue
                changed += conn.execute(
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                    f"WHERE {column} = ? OR substr({column}, 1, ?) = ?",
                    (root, len(old) + 1, old, len(old) + 1, old + "/"),
                ).rowcount
        conn.commit()
    return changed


def _own_store(db: Path) -> bool:
    """The default layout: the store is the checkout's `mlflow.db`, its artifacts beside it."""
    own = repo_root() / "mlflow.db"
    return not os.environ.get("REPROLAB_MLFLOW_ARTIFACTS") and db.resolve() == own.resolve()


_READY: set[str] = set()


def client():
    """An MlflowClient on the repository's store (SQLite at the real root by default)."""
    import mlflow

    for name, value in _HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    uri = mlflow_tracking_uri()
    mlflow.set_tracking_uri(uri)
    db = sqlite_path(uri)
    if db is None or uri in _READY:
        return mlflow.MlflowClient()
    with _init_lock(db):
        prepare_sqlite(db)
        made = mlflow.MlflowClient()
        with_lock_retry(made.search_experiments, max_results=1)  # creates/migrates tables
        if _own_store(db):
            relocate(db, mlflow_artifact_root(repo_root()))
    _READY.add(uri)
    return made


def is_server(uri: str) -> bool:
    """An MLflow tracking server (it decides where artifacts go), not a local store."""
    return uri.startswith(("http://", "https://"))


def unreachable(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) is a connection failure to the tracking server."""
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ in ("ConnectionError", "MaxRetryError", "NewConnectionError"):
            return True
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    return any(
        s in text
        for s in ("Max retries exceeded", "Connection refused", "Failed to establish", "timed out")
    )


def experiment_id(name: str) -> str:
    """Get or create an MLflow experiment whose artifacts live at the repository root, never
    in a cwd-relative ./mlruns (which would vanish with a temporary experiment workspace)."""
    mlflow_client = client()
    found = with_lock_retry(mlflow_client.get_experiment_by_name, name)
    if found is not None:
        return found.experiment_id
    if is_server(mlflow_tracking_uri()) and not os.environ.get("REPROLAB_MLFLOW_ARTIFACTS"):
        # the server proxies artifacts to its own store (S3 or a folder): clients need no
        # storage credentials and nothing lands on the client's disk
        return mlflow_client.create_experiment(name)
    location = f"{mlflow_artifact_root(repo_root())}/{name}"
    try:
        return with_lock_retry(mlflow_client.create_experiment, name, artifact_location=location)
    except Exception:  # another worker created it first
        found = with_lock_retry(mlflow_client.get_experiment_by_name, name)
        if found is None:
            raise
        return found.experiment_id
