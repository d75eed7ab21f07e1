"""Group commit: many callers' writes in one transaction, each caller waiting for its own.

A transaction per small write pays a connection checkout, BEGIN, COMMIT (a WAL flush on
PostgreSQL) and SQLAlchemy's session set-up every time, which costs more than the write
itself. Here every submitted item joins a queue; one flusher task writes whatever is queued
(up to `max_batch`) in one transaction and then settles each caller's future with its own
result. An idle process writes a lone item at once (no timer, no added latency); a busy one
writes what piled up while the previous transaction ran, so batches grow with the load.

When a batch fails as a whole (one item breaks a constraint, a deadlock with another
replica's batch), its items are written again one per transaction, so one bad item never
takes its batch-mates down with it; each caller gets its own item's result or exception.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from storage.database import Database, describe_db_error

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

BatchWrite = Callable[[AsyncSession, Sequence[T]], Awaitable[Sequence[R]]]
"""Writes items inside the given transaction; returns one result per item, in order."""


@dataclass(slots=True)
class _Waiting(Generic[T, R]):
    item: T
    future: asyncio.Future[R]


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        db: Database,
        write: BatchWrite[T, R],
        *,
        max_batch: int = 200,
        flushers: int = 1,
        name: str,
    ) -> None:
        self._db = db
        self._write_batch = write
        self._max_batch = max_batch
        self._name = name
        self._waiting: list[_Waiting[T, R]] = []
        self._flushers: set[asyncio.Task[None]] = set()
        self._max_flushers = flushers
        self.transactions = 0
        """Transactions committed so far (for tests and benchmarks)."""

    async def submit(self, item: T) -> R:
        """Write `item` with whatever else is waiting; returns its result once committed,
        or raises what writing it raised."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        # Retrieve the outcome even when the caller is gone (cancelled), so an error is not
        # reported a second time as "never retrieved".
        future.add_done_callback(_consume)
        self._waiting.append(_Waiting(item, future))
        # A flusher that has just returned is done at once, but leaves the set only when its
        # callbacks run: count the running ones, or a lone item could wait for a next one.
        self._flushers = {task for task in self._flushers if not task.done()}
        if len(self._flushers) < self._max_flushers:
            task = asyncio.create_task(self._flush(), name=f"vestnik-{self._name}")
            self._flushers.add(task)
        # Shielded: a caller cancelled mid-write must not cancel its batch-mates' write.
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
                    "%s: writing %d items together failed (%s); writing them one by one",
                    self._name,
                    len(batch),
                    describe_db_error(exc),
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

    async def _write(self, items: list[T]) -> Sequence[R]:
        async with self._db.transaction() as session:
            results = await self._write_batch(session, items)
        self.transactions += 1
        return results


def _consume(future: asyncio.Future[R]) -> None:
    if not future.cancelled():
        future.exception()


def _settle(entry: _Waiting[T, R], result: R) -> None:
    if not entry.future.done():
        entry.future.set_result(result)


def _settle_error(entry: _Waiting[T, R], exc: Exception) -> None:
    if not entry.future.done():
        entry.future.set_exception(exc)
