"""Dynamic batching for ``rnnvision serve``: concurrent requests for one model share one forward pass.

Requests wait in a list; whenever no batch of that model is running, one is started with up to
``max_batch`` of them, after waiting at most ``max_wait`` seconds for more when fewer are there
(the wait is bounded: a lone request waits that long at most, never for company). The batch
runs in a worker thread; while it runs, new requests gather for the next. Under load every
forward pass thus serves the requests that arrived during the previous one, so the model's
fixed cost per pass is shared, and the event loop is handed one thread hop per batch instead of
one per request. Nothing here knows HTTP or models: :class:`Batcher` takes a function from a list
of items to a list of outcomes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


class Batcher(Generic[Item, Outcome]):
    """Gathers concurrent :meth:`submit` calls into calls of ``work`` on lists of items.

    Args:
        work: items -> one outcome per item, in order; an outcome that is an ``Exception`` is
            raised to that item's caller alone. If ``work`` itself raises, every caller of that
            batch gets the exception.
        max_batch: the most items in one call.
        max_wait: seconds a batch that is not full waits for more items before it starts.
    """

    def __init__(
        self,
        work: Callable[[list[Item]], Sequence[Outcome | Exception]],
        *,
        max_batch: int = 16,
        max_wait: float = 0.002,
    ) -> None:
        if max_batch < 1 or max_wait < 0:
            raise ValueError(f"max_batch must be at least 1 and max_wait at least 0, got {max_batch} and {max_wait}")
        self.work, self.max_batch, self.max_wait = work, max_batch, max_wait
        self._waiting: list[tuple[Item, asyncio.Future[Outcome]]] = []
        self._runner: asyncio.Task[None] | None = None  # the task running batches, while there are items

    async def submit(self, item: Item) -> Outcome:
        """The outcome of ``item``, computed in some batch."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._runner is None:
            self._runner = asyncio.create_task(self._run_batches())
        return await future

    async def _run_batches(self) -> None:
        try:
            while self._waiting:
                if len(self._waiting) < self.max_batch and self.max_wait:
                    await asyncio.sleep(self.max_wait)
                batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
                await self._run(batch)
        finally:
            self._runner = None

    async def _run(self, batch: list[tuple[Item, asyncio.Future[Outcome]]]) -> None:
        try:
            outcomes = await run_in_threadpool(self.work, [item for item, _ in batch])
        except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), outcome in zip(batch, outcomes):
            if future.done():  # its caller went away
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
