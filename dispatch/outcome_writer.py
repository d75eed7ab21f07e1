"""Group commit for delivery outcomes.

Every finished attempt must reach the journal, and one transaction per attempt (connection
checkout, BEGIN, UPDATE, INSERT, COMMIT) cost more than the provider call itself once the
fakes answer at once. The writer hands every outcome that is ready to one flusher task; the
flusher writes all of them in one transaction and wakes each waiting caller with its own
answer. An idle process writes a lone outcome at once (no timer), a busy one writes whatever
piled up while the previous transaction ran (up to `max_batch`), so the batch grows with the
load and the latency does not.

A transaction that fails as a whole (say one row breaks a constraint) is retried row by row,
so one bad outcome never takes its batch-mates down with it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from storage import queue
from storage.database import Database
from storage.queue import Finish

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Waiting:
    item: Finish
    future: asyncio.Future[bool]


class OutcomeWriter:
    """Records `queue.Finish` items in shared transactions; `record` waits for the commit."""

    def __init__(self, db: Database, *, max_batch: int = 200) -> None:
        self._db = db
        self._max_batch = max_batch
        self._waiting: list[_Waiting] = []
        self._flusher: asyncio.Task[None] | None = None
        self.transactions = 0
        """How many transactions were committed (for tests and benchmarks)."""

    async def record(self, item: Finish) -> bool:
        """Write `item`; True once committed, False when the lease was lost (see
        `queue.finish_many`). Raises what the database raised when the write failed."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        # Retrieve the result even when the caller is gone (cancelled at shutdown), so an
        # error is not reported again as "never retrieved".
        future.add_done_callback(_consume)
        self._waiting.append(_Waiting(item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="vestnik-outcome-writer")
        # Shielded: a caller cancelled at shutdown must not cancel its batch-mates' write.
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            try:
                results = await self._write([entry.item for entry in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _settle_error(batch[0], exc)
                    continue
                logger.warning(
                    "writing %d outcomes together failed (%s); writing them one by one",
                    len(batch),
                    exc,
                )
                for entry in batch:
                    try:
                        (result,) = await self._write([entry.item])
                    except Exception as single:
                        _settle_error(entry, single)
                    else:
                        _settle(entry, result)
                continue
            for entry, result in zip(batch, results, strict=True):
                _settle(entry, result)

    async def _write(self, items: list[Finish]) -> list[bool]:
        async with self._db.transaction() as session:
            results = await queue.finish_many(session, items)
        self.transactions += 1
        return results


def _consume(future: asyncio.Future[bool]) -> None:
    if not future.cancelled():
        future.exception()


def _settle(entry: _Waiting, result: bool) -> None:
    if not entry.future.done():
        entry.future.set_result(result)


def _settle_error(entry: _Waiting, exc: Exception) -> None:
    if not entry.future.done():
        entry.future.set_exception(exc)
