"""Where studies live: SQLite `optuna.db` at the real repository root by default (shared by
`dvc exp` workspaces), any SQLAlchemy URL otherwise (PostgreSQL for several machines)."""

from __future__ import annotations

import os
import time
from typing import Any

from reprolab.core.paths import repo_root

HEARTBEAT_S = 10  # a trial whose process died is failed after GRACE_S without a heartbeat
GRACE_S = 30
SCHEMA_RETRIES = 5


def storage_url(configured: str | None) -> str:
    """REPROLAB_OPTUNA_STORAGE (keeps passwords out of params.yaml), else params, else
    SQLite at the repository root."""
    return (
        os.environ.get("REPROLAB_OPTUNA_STORAGE")
        or configured
        or f"sqlite:///{repo_root() / 'optuna.db'}"
    )


def open_storage(url: str) -> Any:
    import warnings

    import optuna

    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # parallel workers on one file: wait for the lock instead of failing at once
        engine_kwargs["connect_args"] = {"timeout": 60}
    import sqlalchemy.exc

    # Workers starting together on a fresh database race to create Optuna's tables: the
    # loser sees a duplicate-key error from the catalogue. Once they exist, a retry succeeds.
    for attempt in range(SCHEMA_RETRIES):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=HEARTBEAT_S,
                    grace_period=GRACE_S,
                )
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == SCHEMA_RETRIES - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")
