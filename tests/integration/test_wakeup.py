"""Waking the right worker lane: in-process rings and PostgreSQL NOTIFY payloads."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import insert

from dispatch.delivery.wakeup import Wakeup
from storage.database import create_database
from storage.listen import Listener
from storage.models import Notification
from storage.types import utcnow
from tests.bulk import seed_pending


def _recorder(wakeup: Wakeup) -> list[str]:
    woken: list[str] = []
    wakeup.subscribe(lambda: woken.append("telegram"), lane="telegram")
    wakeup.subscribe(lambda: woken.append("sms"), lane="sms")
    wakeup.subscribe(lambda: woken.append("any"))
    return woken


def test_a_ring_for_one_lane_wakes_only_that_lane_and_the_catch_all() -> None:
    wakeup = Wakeup()
    woken = _recorder(wakeup)

    wakeup({"sms"})
    assert woken == ["sms", "any"]

    woken.clear()
    wakeup()  # e.g. an operator's resend: nobody knows the lane, everybody looks
    assert woken == ["telegram", "sms", "any"]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("telegram", ["telegram", "any"]),
        ("sms,telegram", ["telegram", "sms", "any"]),
        ("", ["telegram", "sms", "any"]),  # the listener (re)connected: look everywhere
        ("garbage", ["telegram", "sms", "any"]),
    ],
)
def test_notify_payloads_name_the_lanes(payload: str, expected: list[str]) -> None:
    wakeup = Wakeup()
    woken = _recorder(wakeup)

    wakeup.ring_payload(payload)

    assert woken == expected


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_postgresql_notifies_the_lanes_of_new_due_rows_only(database_url: str) -> None:
    payloads: asyncio.Queue[str] = asyncio.Queue()
    listener = Listener(database_url, payloads.put_nowait)
    listener.start()
    try:
        assert await asyncio.wait_for(payloads.get(), 10) == ""  # connected

        await seed_pending(database_url, count=2, chats=1)
        assert await asyncio.wait_for(payloads.get(), 10) == "telegram"

        db = create_database(database_url)
        try:
            now = utcnow()
            row = {
                "event_type": "client_order.ready",
                "recipient": "client",
                "phone": "+79161234567",
                "text": "Заказ готов",
                "created_at": now,
                "updated_at": now,
            }
            async with db.transaction() as session:
                # Recorded without a delivery (awaiting the manager): no worker should look.
                await session.execute(
                    insert(Notification.__table__),
                    [{**row, "status": "awaiting_confirmation", "channel": "sms"}],
                )
            await asyncio.sleep(0.3)
            assert payloads.empty()
            async with db.transaction() as session:
                await session.execute(
                    insert(Notification.__table__),
                    [
                        {**row, "status": "pending", "channel": channel, "next_attempt_at": now}
                        for channel in ("sms", None, "telegram")
                    ],
                )
        finally:
            await db.dispose()
        # The driver may run the insert as one statement or one per row: either way the two
        # lanes are named, and only they.
        lanes: list[str] = []
        lanes.extend((await asyncio.wait_for(payloads.get(), 10)).split(","))
        await asyncio.sleep(0.3)
        while not payloads.empty():
            lanes.extend(payloads.get_nowait().split(","))
        assert sorted(set(lanes)) == ["sms", "telegram"]
        assert len(lanes) <= 3
    finally:
        await listener.stop()
