"""The delivery worker: claims due notifications and delivers them, `concurrency` at once.

`vestnik serve` runs two, one per lane (Telegram, and SMS with everything else), so a
backlog of slow SMS retries never holds up Telegram messages, which are fast and cheap.

It wakes on `wake()` (new work in this process, or a NOTIFY from another replica), on the
earliest due time it knows of, and at least every `poll_seconds`. On `stop()` it claims
nothing new, lets in-flight deliveries finish within the grace period, and gives whatever
is still unfinished back to the queue.

A busy worker gets the successors of its finished rows from the outcome writer, which claims
them in the outcome's own transaction (`refill`); its own claims then serve wake-ups, polls
and slots the writer did not fill. Both count the slots they are claiming for (`_promised`)
until the rows are handed over, so the rows leased to this worker never outnumber its slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.delivery.service import DeliveryService, Prepared
from dispatch.delivery.wakeup import SMS_LANE, TELEGRAM_LANE
from dispatch.group_commit import AfterCommit
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
        self._promised = 0
        """Slots reserved by claims in progress (ours or the writer's), not handed over yet."""
        self._hungry = True
        """The last claim got all it asked for, so more may be due: worth a refill."""
        self.delivered = 0

    @property
    def lane(self) -> str | None:
        """The wake-up lane of this worker (None: it takes every row)."""
        if self._lane is None:
            return None
        return TELEGRAM_LANE if self._lane else SMS_LANE

    def wake(self) -> None:
        """New work may be due: look now rather than at the next poll."""
        self._hungry = True
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
        deadline = asyncio.get_running_loop().time() + grace_seconds
        inflight: dict[asyncio.Task[None], ClaimedNotification] = {}
        pending: set[asyncio.Task[None]] = set()
        # Again while new ones appear: a refill already inside an outcome transaction when
        # `stop()` began hands its rows over when that commits.
        while self._inflight:
            inflight.update(self._inflight)
            remaining = deadline - asyncio.get_running_loop().time()
            _, pending = await asyncio.wait(list(self._inflight), timeout=max(0.0, remaining))
            if pending:
                break
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
            free = self._concurrency - len(self._inflight) - self._promised
            claimed: list[tuple[ClaimedNotification, Prepared]] = []
            if free > 0:
                self._wake.clear()
                self._promised += free
                try:
                    claimed = await self._claim(free)
                except Exception as exc:
                    logger.warning("claiming failed: %s", describe_db_error(exc))
                    await self._sleep(ERROR_BACKOFF_SECONDS)
                    continue
                finally:
                    self._promised -= free
                self._hungry = len(claimed) == free
                self._start(claimed)
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

    async def refill(self, session: AsyncSession, freed: int) -> AfterCommit | None:
        """The outcome writer's call (`outcome_writer.Refill`): `freed` of our rows leave
        `sending` in `session`'s transaction; lease as many successors in it."""
        if self._stopping or not self._hungry:
            return None
        # The freed rows' tasks stay in `_inflight` until this transaction commits.
        limit = min(freed, self._concurrency - len(self._inflight) - self._promised + freed)
        if limit <= 0:
            return None
        self._promised += limit
        try:
            items = await queue.claim_due(
                session, now=utcnow(), lease=self._lease, limit=limit, telegram=self._lane
            )
            prepared = await self._delivery.prepare(session, items) if items else None
        except BaseException:
            self._promised -= limit
            raise

        def settle(committed: bool) -> None:
            self._promised -= limit
            if not committed:
                self._wake.set()  # rolled back: those rows are still due
                return
            self._hungry = len(items) == limit
            if prepared is not None:
                self._start([(item, prepared) for item in items])

        return settle

    def _start(self, claimed: list[tuple[ClaimedNotification, Prepared]]) -> None:
        for item, prepared in claimed:
            task = asyncio.create_task(self._deliver(item, prepared), name=f"deliver-{item.id}")
            self._inflight[task] = item
            task.add_done_callback(self._done)

    async def _deliver(self, item: ClaimedNotification, prepared: Prepared) -> None:
        try:
            await self._delivery.deliver(item, prepared, refill=self)
            self.delivered += 1
        except asyncio.CancelledError:
            raise
        except Exception:
            # The lease runs out and the row is claimed again: logged, not lost.
            logger.exception("delivery of notification %s failed unexpectedly", item.id)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        # Only when a slot is really free: a refilled slot already has its successor, and
        # waking the loop for nothing after every delivery cost a loop turn and a timer.
        if self._concurrency - len(self._inflight) - self._promised > 0:
            self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        # `timeout` rather than `wait_for`: no extra task per sleep.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
