"""Delivery outcomes written together: many finished sends, few transactions, nothing lost."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from dispatch.delivery.outcome_writer import OutcomeWriter
from storage import queue
from storage.database import Database
from storage.models import Notification, NotificationHistory
from storage.queue import ClaimedNotification, Finish
from storage.types import utcnow
from tests.bulk import seed_pending


async def _claim(db: Database, database_url: str, count: int) -> list[ClaimedNotification]:
    await seed_pending(database_url, count=count)
    async with db.transaction() as session:
        return await queue.claim_due(
            session, now=utcnow(), lease=timedelta(seconds=60), limit=count
        )


def _sent(item: ClaimedNotification, **fields: object) -> Finish:
    return Finish(
        item.id,
        item.lease_until,
        "sent",
        utcnow(),
        "accepted",
        fields={"attempts": 1, "channel": "sms", **fields},
    )


async def _statuses(db: Database) -> dict[str, int]:
    async with db.sessions() as session:
        rows = await session.execute(
            select(Notification.status, func.count()).group_by(Notification.status)
        )
        return {str(status): int(count) for status, count in rows.all()}


async def test_a_burst_of_outcomes_shares_transactions(db: Database, database_url: str) -> None:
    claimed = await _claim(db, database_url, 120)
    writer = OutcomeWriter(db, max_batch=50)

    results = await asyncio.gather(*(writer.record(_sent(item)) for item in claimed))

    assert results == [True] * 120
    assert await _statuses(db) == {"sent": 120}
    # 120 outcomes ready at once: batches of at most 50, not 120 transactions.
    assert writer.transactions == 3
    async with db.sessions() as session:
        final_rows = await session.scalar(
            select(func.count())
            .select_from(NotificationHistory)
            .where(NotificationHistory.to_status == "sent", NotificationHistory.actor == "worker")
        )
    assert final_rows == 120


async def test_a_lone_outcome_is_written_at_once(db: Database, database_url: str) -> None:
    (item,) = await _claim(db, database_url, 1)
    writer = OutcomeWriter(db)

    assert await asyncio.wait_for(writer.record(_sent(item)), 5) is True
    assert writer.transactions == 1
    assert await _statuses(db) == {"sent": 1}


async def test_a_bad_outcome_does_not_sink_its_batch(db: Database, database_url: str) -> None:
    first, second, third = await _claim(db, database_url, 3)
    writer = OutcomeWriter(db)

    results = await asyncio.gather(
        writer.record(_sent(first)),
        writer.record(_sent(second, no_such_column=1)),
        writer.record(_sent(third)),
        return_exceptions=True,
    )

    assert results[0] is True and results[2] is True
    assert isinstance(results[1], Exception)
    async with db.sessions() as session:
        still_sending = await session.scalar(
            select(Notification.status).where(Notification.id == second.id)
        )
    # The broken one keeps its lease: it expires and another attempt takes the row.
    assert still_sending == "sending"
    assert await _statuses(db) == {"sent": 2, "sending": 1}


async def test_an_outcome_after_the_lease_passed_on_writes_nothing(
    db: Database, database_url: str
) -> None:
    (item,) = await _claim(db, database_url, 1)
    async with db.transaction() as session:
        # Another worker reclaimed the row after our lease ran out.
        (retaken,) = await queue.claim_due(
            session, now=item.lease_until + timedelta(seconds=1), lease=timedelta(60), limit=1
        )
    writer = OutcomeWriter(db)

    assert await writer.record(_sent(item)) is False
    assert await writer.record(_sent(retaken)) is True
    assert await _statuses(db) == {"sent": 1}
