"""Quiet hours (CONTRACT §9): a client's notification created at night waits as `scheduled`
and goes out when the window ends; urgent types and a client's own time zone; a manager
sends one at once from the API or the bot. Live Vestnik, the fake Bot API, both databases.

The clock: the event's intake and the delivery worker read "now" through their module's
`utcnow`; the `clock` fixture replaces both with a time the test moves, so nothing sleeps
until morning.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dispatch.delivery import worker
from dispatch.intake import ingest
from tests.conftest import Service, live_settings, start_service
from tests.events import make_event
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram
from tests.integration.test_bot_support import (
    CLIENT_CHAT,
    MANAGER_CHAT,
    add_client,
    add_manager,
    buttons,
    say,
)

NIGHT = datetime(2026, 12, 2, 19, 30, tzinfo=UTC)
"""22:30 in Moscow: inside 21:00-09:00."""
MORNING = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
"""09:00 in Moscow: the window's end."""
QUIET = {"mode": "live", "quiet_hours": "21:00-09:00", "timezone": "Europe/Moscow"}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock(NIGHT)
    monkeypatch.setattr(ingest, "utcnow", moved)
    monkeypatch.setattr(worker, "utcnow", moved)
    return moved


@pytest.fixture
async def quiet_service(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway, clock: Clock
) -> AsyncIterator[Service]:
    """Live mode, quiet hours 21:00-09:00 Moscow time, the client subscribed to the bot."""
    # Telegram's own per-chat limit, enforced: a release in one burst would earn 429s.
    telegram.per_chat_per_second = 1
    settings = live_settings(database_url, telegram, sms_gateway, notify=QUIET)
    running = await start_service(settings)
    await add_manager(running, chat_id=MANAGER_CHAT)
    await add_client(running)
    await running.link_chat(CLIENT_CHAT, client_id="C-1001")
    try:
        yield running
    finally:
        await running.client.close()


async def post(service: Service, *, client: dict[str, Any] | None = None) -> dict[str, Any]:
    event = make_event("client_order.ready")
    if client is not None:
        event["client"] = {**event["client"], **client}
    status, body = await service.post_event(event)
    assert status == 202, body
    [note] = [n for n in body["notifications"] if n["recipient"] == "client"]
    return dict(note)


async def journal_item(service: Service, notification_id: int) -> dict[str, Any]:
    status, body = await service.admin("GET", f"/api/v1/notifications/{notification_id}")
    assert status == 200, body
    return dict(body)


async def stays(service: Service, notification_id: int, status: str) -> None:
    """Several worker polls pass and the notification is still in `status`."""
    await asyncio.sleep(0.6)
    assert (await journal_item(service, notification_id))["status"] == status


async def test_a_night_notification_waits_and_goes_out_when_the_window_ends(
    quiet_service: Service, telegram: FakeTelegram, clock: Clock
) -> None:
    notes = [await post(quiet_service) for _ in range(3)]
    assert {note["status"] for note in notes} == {"scheduled"}

    item = await journal_item(quiet_service, notes[0]["id"])
    assert item["not_before"] == MORNING.isoformat()
    assert item["reason"].startswith(
        "quiet hours 21:00-09:00 (Europe/Moscow): held until 2026-12-03 09:00 local time"
    )
    status, page = await quiet_service.admin("GET", "/api/v1/notifications?status=scheduled")
    assert status == 200 and len(page["items"]) == 3

    clock.now = MORNING - timedelta(seconds=1)
    await stays(quiet_service, notes[0]["id"], "scheduled")
    assert telegram.messages_to(CLIENT_CHAT) == []

    clock.now = MORNING + timedelta(seconds=1)
    for note in notes:
        await quiet_service.wait_for_status(note["id"], "sent", within=15)
    assert len(telegram.messages_to(CLIENT_CHAT)) == 3
    # Claimed like pending rows, under the per-chat pace: Telegram refused nothing.
    assert telegram.rejected_429 == 0
    history = await quiet_service.history(notes[0]["id"])
    assert ("scheduled", "sending", "quiet hours are over") in history
    assert (await journal_item(quiet_service, notes[0]["id"]))["not_before"] is None


async def test_an_urgent_type_goes_out_at_night(
    quiet_service: Service, telegram: FakeTelegram
) -> None:
    status, body = await quiet_service.admin(
        "PUT", "/api/v1/event-types/client_order.ready", json_body={"urgent": True}
    )
    assert status == 200 and body["urgent"] is True, body

    note = await post(quiet_service)

    assert note["status"] == "pending"
    await quiet_service.wait_for_status(note["id"], "sent")
    assert len(telegram.messages_to(CLIENT_CHAT)) == 1


async def test_the_clients_own_time_zone_moves_the_window(
    quiet_service: Service, clock: Clock
) -> None:
    # 14:30 in New York: daytime there, though it is night in Moscow.
    day_there = await post(quiet_service, client={"timezone": "America/New_York"})
    assert day_there["status"] == "pending"

    # 10:00 UTC is 13:00 in Moscow but 23:00 in Auckland (summer time, UTC+13).
    clock.now = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    night_there = await post(quiet_service, client={"timezone": "Pacific/Auckland"})
    assert night_there["status"] == "scheduled"
    item = await journal_item(quiet_service, night_there["id"])
    assert item["not_before"] == datetime(2026, 12, 3, 20, 0, tzinfo=UTC).isoformat()
    assert "(Pacific/Auckland): held until 2026-12-04 09:00 local time" in item["reason"]

    status, body = await quiet_service.post_event(
        make_event(
            "client_order.ready", client={**make_event()["client"], "timezone": "Mars/Base"}
        )
    )
    assert status == 422
    assert "timezone" in str(body["error"]["details"])
    assert "Mars/Base" in str(body["error"]["details"])


async def test_an_admin_sends_a_held_notification_now(
    quiet_service: Service, telegram: FakeTelegram
) -> None:
    note = await post(quiet_service)

    status, body = await quiet_service.admin(
        "POST", f"/api/v1/notifications/{note['id']}/send-now", json_body={}
    )

    assert status == 200, body
    assert body["status"] == "pending"
    await quiet_service.wait_for_status(note["id"], "sent")
    assert len(telegram.messages_to(CLIENT_CHAT)) == 1
    steps = [(step["from_status"], step["to_status"], step["actor"]) for step in body["history"]]
    assert ("scheduled", "pending", "admin:api") in steps

    status, body = await quiet_service.admin(
        "POST", f"/api/v1/notifications/{note['id']}/send-now", json_body={}
    )
    assert status == 409 and body["error"]["code"] == "conflict"
    status, body = await quiet_service.admin(
        "POST", "/api/v1/notifications/424242/send-now", json_body={}
    )
    assert status == 404


async def test_a_manager_sends_a_held_notification_now_from_the_bot(
    quiet_service: Service, telegram: FakeTelegram
) -> None:
    note = await post(quiet_service)

    [reply] = await say(telegram, telegram.command(MANAGER_CHAT, "/status", str(note["id"])))

    text = reply.text or ""
    assert "ждёт конца тихих часов" in text
    assert "тихие часы 21:00-09:00 (Europe/Moscow): ждёт до 2026-12-03 09:00" in text
    [(label, data)] = buttons(reply)
    assert label == "🔔 Отправить сейчас"

    before = len(telegram.callback_answers)
    telegram.push_update(telegram.callback_query(MANAGER_CHAT, data, message_id=reply.message_id))
    await telegram.wait_until(lambda: len(telegram.callback_answers) > before)

    assert telegram.callback_answers[-1].text == (
        "Отправляем клиенту, не дожидаясь конца тихих часов."
    )
    await quiet_service.wait_for_status(note["id"], "sent")
    assert len(telegram.messages_to(CLIENT_CHAT)) == 1
    history = await quiet_service.history(note["id"])
    assert ("scheduled", "pending", "sent now by hand, before the quiet hours end") in history


async def test_test_mode_only_says_it_would_wait(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway, clock: Clock
) -> None:
    settings = live_settings(database_url, telegram, sms_gateway, notify={**QUIET, "mode": "test"})
    service = await start_service(settings)
    try:
        await add_client(service)
        await service.link_chat(CLIENT_CHAT, client_id="C-1001")
        note = await post(service)
        item = await journal_item(service, note["id"])
    finally:
        await service.client.close()

    assert note["status"] == "test"
    assert item["not_before"] is None
    assert item["reason"].startswith(
        "quiet hours 21:00-09:00 (Europe/Moscow): would be held until 2026-12-03 09:00"
    )
    assert telegram.messages_to(CLIENT_CHAT) == []
