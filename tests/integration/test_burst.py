"""A burst of due Telegram notifications against a fake that enforces Telegram's limits:
Vestnik paces itself (per bot and per chat) and earns no 429."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict

import pytest
from sqlalchemy import func, select

from handlers.common.keys import WAKEUP
from storage.models import Notification
from tests.bulk import seed_pending
from tests.conftest import live_settings, start_service
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram


async def run_burst(
    database_url: str,
    telegram: FakeTelegram,
    gateway: FakeHttpGateway,
    *,
    count: int,
    chats: int,
    per_second: int,
    within: float,
) -> None:
    telegram.per_second = per_second
    telegram.per_chat_per_second = 1
    seeded = await seed_pending(database_url, count=count, chats=chats)
    settings = live_settings(
        database_url,
        telegram,
        gateway,
        delivery={
            "telegram_per_second": per_second,
            "telegram_per_chat_per_second": 1,
            "workers": 32,
        },
    )
    service = await start_service(settings)
    try:
        service.app[WAKEUP]()
        await telegram.wait_until(lambda: len(telegram.sent) >= count, timeout=within)
        # The last rows may still be recording their outcome.
        for _ in range(100):
            async with service.db.sessions() as session:
                statuses = dict(
                    (
                        await session.execute(
                            select(Notification.status, func.count()).group_by(Notification.status)
                        )
                    ).all()
                )
            if statuses.get("sent") == count:
                break
            await asyncio.sleep(0.05)
    finally:
        await service.client.close()

    assert telegram.rejected_429 == 0
    assert statuses == {"sent": count}
    assert gateway.sent == []
    times: dict[int, list[float]] = defaultdict(list)
    for message in telegram.sent:
        times[message.chat_id].append(message.time)
    assert set(times) == set(seeded.chat_of.values())
    for chat_times in times.values():
        ordered = sorted(chat_times)
        assert all(b - a >= 1.0 for a, b in itertools.pairwise(ordered))
    everything = sorted(message.time for message in telegram.sent)
    for index, start in enumerate(everything):
        inside = [t for t in everything[index : index + per_second + 1] if t - start < 1.0]
        assert len(inside) <= per_second


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_burst_of_300_paced_per_bot_and_per_chat_without_a_429(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    """The CI-sized burst: 100 chats × 3 messages at 100 msg/s, 1 msg/s per chat."""
    await run_burst(
        database_url, telegram, sms_gateway, count=300, chats=100, per_second=100, within=60
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_burst_of_1000_at_telegrams_own_limits_without_a_429(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    """The issue's figure at Telegram's real limits (≈35 s): run with `pytest -m slow`."""
    await run_burst(
        database_url, telegram, sms_gateway, count=1000, chats=400, per_second=30, within=120
    )
