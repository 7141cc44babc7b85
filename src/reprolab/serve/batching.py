"""Micro-batching for per-row models: requests that arrive within `max_wait` of each other
are concatenated into one model call (up to `max_batch` requests), which pays when the
per-call overhead dominates (a pyfunc's checks, a torch forward). Off by default: with one
client it only adds the wait. Requests for different model versions (during a swap) never
share a batch, and a failed batch is retried request by request, so one bad row fails only
its own request."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from reprolab.serve.metrics import Metrics
from reprolab.serve.tasks import RowAdapter


@dataclass
class _Item:
    model: Any
    frame: pd.DataFrame
    done: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class MicroBatcher:
    def __init__(
        self, task: str, adapter: RowAdapter, max_batch: int, max_wait_s: float, metrics: Metrics
    ) -> None:
        self.task, self.adapter = task, adapter
        self.max_batch, self.max_wait_s, self.metrics = max_batch, max_wait_s, metrics
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._held: deque[_Item] = deque()
        self._worker: asyncio.Task | None = None

    async def run(self, model: Any, frame: pd.DataFrame) -> list[Any]:
        """The outputs of `frame`'s rows, computed in some batch."""
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work(), name=f"batch-{self.task}")
        item = _Item(model, frame)
        await self._queue.put(item)
        return await item.done

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    async def _next(self) -> _Item:
        return self._held.popleft() if self._held else await self._queue.get()

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next()
            batch = [first]
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0 and self._queue.empty():
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), max(timeout, 0))
                except TimeoutError:
                    break
                if item.model is not first.model:
                    self._held.append(item)
                    break
                batch.append(item)
            await self._compute(batch)

    async def _compute(self, batch: list[_Item]) -> None:
        self.metrics.batch_size.labels(self.task).observe(len(batch))
        frame = pd.concat([item.frame for item in batch], ignore_index=True)
        try:
            outputs = await asyncio.to_thread(self.adapter.run, batch[0].model, frame)
        except Exception:
            for item in batch:  # each alone: only the request that fails gets the error
                await self._single(item)
            return
        start = 0
        for item in batch:
            end = start + len(item.frame)
            if not item.done.done():
                item.done.set_result(list(outputs[start:end]))
            start = end

    async def _single(self, item: _Item) -> None:
        try:
            outputs = await asyncio.to_thread(self.adapter.run, item.model, item.frame)
        except Exception as err:
            if not item.done.done():
                item.done.set_exception(err)
            return
        if not item.done.done():
            item.done.set_result(list(outputs))
