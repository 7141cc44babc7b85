"""A slot holds what one name serves: a registry task's model by alias, or a fixed model
(a directory). It loads a new version in the background and swaps it in with one assignment:
a request takes `slot.current` once at its start and finishes on that model, so requests in
flight are never cut; a failed load keeps the old model and is shown in /ready and metrics."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reprolab.serve.errors import ApiError
from reprolab.serve.metrics import Metrics

FIXED = "local"  # the version name of a model given by directory
log = logging.getLogger("uvicorn.error")  # printed the way uvicorn prints its own


@dataclass(frozen=True)
class Loaded:
    version: str
    run_id: str | None
    source: str
    loaded_at: str
    model: Any
    tags: dict[str, str]


class Slot:
    def __init__(
        self,
        name: str,
        load: Callable[[str], Any],
        metrics: Metrics,
        alias: str | None = None,
        location: str | None = None,
        gate: Any = None,
    ) -> None:
        """A registry task (`alias`, and its `gate`: params' registry.<task>) or a fixed
        model (`location`)."""
        self.name, self.alias, self.location = name, alias, location
        self.gate = gate
        self._load, self._metrics = load, metrics
        self.current: Loaded | None = None
        self.error: str | None = None
        self.checked_at: float | None = None
        self._refreshing = asyncio.Lock()

    @property
    def watched(self) -> bool:
        return self.alias is not None

    def require(self) -> Loaded:
        """The model to answer with now; 503 while the first load has not finished."""
        loaded = self.current
        if loaded is None:
            why = f" (last error: {self.error})" if self.error else ""
            raise ApiError(503, f"{self.name}: the model is still loading{why}")
        return loaded

    def _target(self) -> tuple[str, str | None, str, dict[str, str]]:
        """(version, run id, source URI, tags) the alias points at now, or the fixed
        location."""
        if self.alias is None:
            return FIXED, None, str(self.location), {}
        from mlflow.exceptions import MlflowException

        from reprolab.core.tracking import client

        try:
            version = client().get_model_version_by_alias(self.name, self.alias)
        except MlflowException as err:
            raise LookupError(f"models:/{self.name}@{self.alias}: {_first_line(err)}") from err
        source = f"models:/{self.name}/{version.version}"
        return str(version.version), version.run_id, source, dict(version.tags or {})

    async def refresh(self, force: bool = False) -> str:
        """Load what the alias points at if it is not what we serve: 'loaded', 'unchanged' or
        'failed' (then `error` says why and the old model stays)."""
        async with self._refreshing:
            self.checked_at = time.time()
            try:
                version, run_id, source, tags = await asyncio.to_thread(self._target)
                current = self.current
                if current is not None and current.version == version and not force:
                    return "unchanged"
                model = await asyncio.to_thread(self._load, source)
            except Exception as err:  # any failure keeps the model we have
                self.error = _first_line(err)
                log.warning(
                    "%s: load failed, keeping %s: %s", self.name, self._serving(), self.error
                )
                self._metrics.reloads.labels(self.name, "failed").inc()
                return "failed"
            old = self.current
            self.current = Loaded(version, run_id, source, _now(), model, tags)
            self.error = None
            self._metrics.reloads.labels(self.name, "ok").inc()
            log.info("%s: serving version %s (%s)", self.name, version, source)
            self._metrics.serving(
                self.name, self.alias or FIXED, None if old is None else old.version, version
            )
            return "loaded"

    def _metric(self, tags: dict[str, str]) -> dict[str, Any] | None:
        """The registry metric the version was gated on (validation), and its test score."""
        if self.gate is None:
            return None
        from reprolab.core.registry_store import metric_key
        from reprolab.core.tracking import TAG

        def value(split: str) -> float | None:
            raw = tags.get(TAG + metric_key(self.gate, split))
            number = None if raw is None else float(raw)
            return number if number is not None and math.isfinite(number) else None

        base = self.gate.baseline
        return {
            "name": self.gate.metric,
            "valid": value("valid"),
            "test": value("test"),
            "baseline": None if base is None else {"name": base.name, "score": base.score},
        }

    def _serving(self) -> str:
        return "nothing yet" if self.current is None else f"version {self.current.version}"

    def describe(self) -> dict[str, Any]:
        loaded = self.current
        return {
            "task": self.name,
            "alias": self.alias,
            "version": None if loaded is None else loaded.version,
            "model": None if loaded is None else loaded.tags.get("reprolab.model"),
            "run_id": None if loaded is None else loaded.run_id,
            "source": self.location if loaded is None else loaded.source,
            "loaded_at": None if loaded is None else loaded.loaded_at,
            "metric": None if loaded is None else self._metric(loaded.tags),
            "ready": loaded is not None,
            "error": self.error,
        }


async def watch(slots: list[Slot], interval: float) -> None:
    """Check every watched alias each `interval` seconds, and retry failed first loads."""
    while True:
        await asyncio.sleep(interval)
        for slot in slots:
            if slot.watched or slot.current is None:
                await slot.refresh()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0][:300] if text else "") or type(err).__name__
