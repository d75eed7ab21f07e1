"""The delivery worker: claims due notifications and delivers them, `concurrency` at once.

`vestnik serve` runs two, one per lane (Telegram, and SMS with everything else), so a
backlog of slow SMS retries never holds up Telegram messages, which are fast and cheap.

It wakes on `wake()` (new work in this process, or a NOTIFY from another replica), on the
earliest due time it knows of, and at least every `poll_seconds`. On `stop()` it claims
nothing new, lets in-flight deliveries finish within the grace period, and gives whatever
is still unfinished back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from dispatch.delivery.service import DeliveryService, Prepared
from dispatch.delivery.wakeup import SMS_LANE, TELEGRAM_LANE
from storage import queue
from storage.database import Database, describe_db_error
from storage.queue import ClaimedNotification
from storage.types import utcnow

logger = logging.getLogger(__name__)

ERROR_BACKOFF_SECONDS = 1.0


class Worker:
    def __init__(
        self,
        *,
        db: Database,
        delivery: DeliveryService,
        concurrency: int = 8,
        lease_seconds: float = 60.0,
        poll_seconds: float = 5.0,
        telegram_lane: bool | None = None,
    ) -> None:
        self._db = db
        self._delivery = delivery
        self._concurrency = concurrency
        self._lease = timedelta(seconds=lease_seconds)
        self._poll = poll_seconds
        self._lane = telegram_lane
        self._wake = asyncio.Event()
        self._stopping = False
        self._inflight: dict[asyncio.Task[None], ClaimedNotification] = {}
        self._task: asyncio.Task[None] | None = None
        self.delivered = 0

    @property
    def lane(self) -> str | None:
        """The wake-up lane of this worker (None: it takes every row)."""
        if self._lane is None:
            return None
        return TELEGRAM_LANE if self._lane else SMS_LANE

    def wake(self) -> None:
        """New work may be due: look now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"vestnik-worker-{self.lane or 'all'}")

    async def stop(self, grace_seconds: float = 8.0) -> None:
        """Stop claiming; wait for in-flight work, then release what is left."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._inflight:
            # A snapshot: finished tasks remove themselves from `_inflight`.
            inflight = dict(self._inflight)
            _, pending = await asyncio.wait(list(inflight), timeout=grace_seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
                await self._release([inflight[task] for task in pending])

    async def _release(self, items: list[ClaimedNotification]) -> None:
        try:
            async with self._db.transaction() as session:
                released = await queue.release(
                    session,
                    [(item.id, item.lease_until) for item in items],
                    now=utcnow(),
                    reason="released at shutdown",
                )
            logger.info("released %d in-flight notification(s) at shutdown", released)
        except Exception as exc:
            # Their leases expire and another worker takes them: nothing is lost.
            logger.warning("could not release at shutdown (%s); leases will expire", exc)

    async def _run(self) -> None:
        while not self._stopping:
            free = self._concurrency - len(self._inflight)
            claimed: list[tuple[ClaimedNotification, Prepared]] = []
            if free > 0:
                self._wake.clear()
                try:
                    claimed = await self._claim(free)
                except Exception as exc:
                    logger.warning("claiming failed: %s", describe_db_error(exc))
                    await self._sleep(ERROR_BACKOFF_SECONDS)
                    continue
                for item, prepared in claimed:
                    task = asyncio.create_task(
                        self._deliver(item, prepared), name=f"deliver-{item.id}"
                    )
                    self._inflight[task] = item
                    task.add_done_callback(self._done)
            if len(claimed) == free and free > 0:
                continue  # there may be more due right now
            await self._sleep(self._poll)

    async def _claim(self, limit: int) -> list[tuple[ClaimedNotification, Prepared]]:
        """Lease up to `limit` due rows, each with what its delivery needs read alongside."""
        async with self._db.transaction() as session:
            claimed = await queue.claim_due(
                session, now=utcnow(), lease=self._lease, limit=limit, telegram=self._lane
            )
            if not claimed:
                return []
            prepared = await self._delivery.prepare(session, claimed)
        return [(item, prepared) for item in claimed]

    async def _deliver(self, item: ClaimedNotification, prepared: Prepared) -> None:
        try:
            await self._delivery.deliver(item, prepared)
            self.delivered += 1
        except asyncio.CancelledError:
            raise
        except Exception:
            # The lease runs out and the row is claimed again: logged, not lost.
            logger.exception("delivery of notification %s failed unexpectedly", item.id)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        self._wake.set()  # a slot is free

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
