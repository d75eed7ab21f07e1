"""The queue's claim and quiet hours (storage/queue.py `claim_due`, both dialects: the
PostgreSQL claim is its own CTE): a `scheduled` row is never taken before its
`next_attempt_at`, and then it is taken like a `pending` one, in its lane and within the
batch limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from storage import queue
from storage.database import Database
from storage.models import Notification, NotificationHistory

MORNING = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


async def held(db: Database, *, count: int, channel: str = "telegram") -> list[int]:
    """`count` rows held by quiet hours until MORNING."""
    night = MORNING - timedelta(hours=9)
    row = {
        "event_type": "client_order.ready",
        "recipient": "client",
        "client_id": "C-1001",
        "channel": channel,
        "phone": "+79161234567",
        "status": "scheduled",
        "text": "Заказ готов",
        "next_attempt_at": MORNING,
        "queued_at": MORNING,
        "created_at": night,
        "updated_at": night,
    }
    table = Notification.__table__
    async with db.transaction() as session:
        result = await session.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True),
            [dict(row) for _ in range(count)],
        )
        return [int(found[0]) for found in result]


async def claim(
    db: Database, now: datetime, *, limit: int = 10, telegram: bool | None = None
) -> list[queue.ClaimedNotification]:
    async with db.transaction() as session:
        return await queue.claim_due(session, now=now, lease=LEASE, limit=limit, telegram=telegram)


async def test_a_scheduled_row_is_not_claimed_before_its_time(db: Database) -> None:
    [held_id] = await held(db, count=1)

    assert await claim(db, MORNING - timedelta(seconds=1)) == []
    assert await claim(db, MORNING - timedelta(microseconds=1), telegram=True) == []

    [item] = await claim(db, MORNING)
    assert item.id == held_id
    assert item.reclaimed is False
    async with db.sessions() as session:
        row = await session.get(Notification, held_id)
        steps = (
            await session.execute(
                select(NotificationHistory).where(NotificationHistory.notification_id == held_id)
            )
        ).scalars()
        history = [(step.from_status, step.to_status, step.reason) for step in steps]
    assert row is not None and row.status == "sending"
    assert history == [("scheduled", "sending", "quiet hours are over")]


async def test_due_scheduled_rows_are_claimed_like_pending_ones(db: Database) -> None:
    telegram_ids = await held(db, count=5)
    sms_ids = await held(db, count=2, channel="sms")

    # The lane and the batch limit hold for them as for pending rows.
    first = await claim(db, MORNING + timedelta(minutes=1), limit=3, telegram=True)
    assert len(first) == 3 and {item.id for item in first} <= set(telegram_ids)
    sms = await claim(db, MORNING + timedelta(minutes=1), telegram=False)
    assert sorted(item.id for item in sms) == sms_ids
    rest = await claim(db, MORNING + timedelta(minutes=1), telegram=True)
    assert {item.id for item in first + rest} == set(telegram_ids)
    assert await claim(db, MORNING + timedelta(minutes=1)) == []
