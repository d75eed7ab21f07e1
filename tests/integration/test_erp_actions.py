"""Buttons back to the ERP (CONTRACT §9): an event's actions become buttons under the
client's Telegram message, and a press reaches the ERP signed, retried until it answers 2xx,
once per button, also across a restart of Vestnik."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.keys import ERP_OUTBOX
from bot.settings import Settings
from storage.database import create_database
from storage.models import ErpActionPress
from tests.conftest import Service, live_settings, start_service
from tests.events import make_event
from tests.fakes.erp import FakeErp
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram, SentMessage
from tests.integration.test_bot_support import (
    CLIENT_CHAT,
    STRANGER_CHAT,
    add_client,
    buttons,
    eventually,
)

CALLBACK_SECRET = "erp-callback-secret-0123456789"
ACTIONS = [
    {"id": "confirm", "label": "Подтвердить заказ"},
    {"id": "call_me", "label": "Перезвоните мне"},
]
ACCEPTED = "Принято, менеджер свяжется с вами"
AGAIN = "Мы уже получили ваш ответ, менеджер свяжется с вами"
UNKNOWN = "Эта кнопка больше не действует."


@pytest.fixture
async def erp() -> AsyncIterator[FakeErp]:
    async with FakeErp(CALLBACK_SECRET).running() as fake:
        yield fake


def erp_settings(
    database_url: str, telegram: FakeTelegram, gateway: FakeHttpGateway, url: str
) -> Settings:
    return live_settings(
        database_url,
        telegram,
        gateway,
        erp={
            "callback_url": url,
            "callback_secret": CALLBACK_SECRET,
            "retry_base_seconds": 0.05,
            "retry_cap_seconds": 0.2,
            "poll_seconds": 0.1,
        },
    )


async def order_with_buttons(service: Service, telegram: FakeTelegram) -> tuple[int, SentMessage]:
    """A subscribed client gets an order event with two actions: its notification id and
    the Telegram message with the buttons."""
    await add_client(service)
    await service.link_chat(CLIENT_CHAT, client_id="C-1001")
    event = {**make_event("client_order.ready", event_id="erp-btn-1"), "actions": ACTIONS}
    status, body = await service.post_event(event)
    assert status == 202, body
    [note] = [n for n in body["notifications"] if n["recipient"] == "client"]
    await service.wait_for_status(note["id"], "sent")
    [message] = telegram.messages_to(CLIENT_CHAT)
    return note["id"], message


async def press(
    telegram: FakeTelegram, message: SentMessage, data: str, *, chat_id: int = CLIENT_CHAT
) -> str | None:
    before = len(telegram.callback_answers)
    telegram.push_update(telegram.callback_query(chat_id, data, message_id=message.message_id))
    await telegram.wait_until(lambda: len(telegram.callback_answers) > before)
    return telegram.callback_answers[-1].text


async def presses_shown(service: Service, notification_id: int) -> list[dict[str, Any]]:
    status, body = await service.admin("GET", f"/api/v1/notifications/{notification_id}")
    assert status == 200, body
    return list(body["actions_pressed"])


async def test_press_reaches_the_erp_signed_after_a_500_and_only_once(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway, erp: FakeErp
) -> None:
    erp.answers = [500]
    service = await start_service(erp_settings(database_url, telegram, sms_gateway, erp.url))
    try:
        notification_id, message = await order_with_buttons(service, telegram)
        shown = buttons(message)
        assert [label for label, _ in shown] == ["Подтвердить заказ", "Перезвоните мне"]
        assert all(len(data.encode()) <= 64 for _, data in shown)
        confirm = shown[0][1]

        assert await press(telegram, message, confirm) == ACCEPTED

        async def delivered() -> bool:
            return any(p["delivered_at"] for p in await presses_shown(service, notification_id))

        await eventually(delivered, what="the press delivered to the ERP")
        assert len(erp.received) == 2, "the 500 is retried once, then taken"
        assert all(signed for _, signed in erp.received)
        body = erp.received[-1][0]
        assert body["event_id"] == "erp-btn-1"
        assert body["action"] == "confirm"
        assert body["client_id"] == "C-1001"
        assert body["document"]["number"] == "ЗК-000123"
        assert body["pressed_at"]
        [pressed] = await presses_shown(service, notification_id)
        assert pressed["action"] == "confirm"
        assert pressed["attempts"] == 2
        assert pressed["last_error"] is None

        # The client presses again: a polite answer, nothing more for the ERP.
        assert await press(telegram, message, confirm) == AGAIN
        await service.app[ERP_OUTBOX].flush()
        assert len(erp.received) == 2
        assert len(await presses_shown(service, notification_id)) == 1
    finally:
        await service.client.close()


async def test_forged_or_foreign_presses_are_refused_and_never_reach_the_erp(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway, erp: FakeErp
) -> None:
    service = await start_service(erp_settings(database_url, telegram, sms_gateway, erp.url))
    try:
        notification_id, message = await order_with_buttons(service, telegram)
        confirm = buttons(message)[0][1]
        forged = confirm[:-4] + ("0000" if not confirm.endswith("0000") else "1111")
        assert await press(telegram, message, forged) == UNKNOWN
        # The right data from a chat that is not the client's.
        assert await press(telegram, message, confirm, chat_id=STRANGER_CHAT) == UNKNOWN
        other = f"ea:{notification_id}:2:{'0' * 20}"
        assert await press(telegram, message, other) == UNKNOWN
        await service.app[ERP_OUTBOX].flush()
        assert erp.received == []
        assert await presses_shown(service, notification_id) == []
    finally:
        await service.client.close()


async def test_actions_without_a_callback_url_are_refused(service: Service) -> None:
    event = {**make_event("client_order.ready"), "actions": ACTIONS}
    status, body = await service.post_event(event)
    assert status == 422, body
    assert body["error"]["code"] == "actions_not_configured"
    assert "erp.callback_url" in body["error"]["message"]

    too_many = [{"id": f"a{i}", "label": f"Кнопка {i}"} for i in range(4)]
    status, body = await service.post_event({**make_event(), "actions": too_many})
    assert status == 422, body
    assert body["error"]["code"] == "validation_error"


async def test_a_pending_press_is_delivered_by_the_next_start(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway, erp: FakeErp
) -> None:
    erp.answers = [503] * 1000
    settings = erp_settings(database_url, telegram, sms_gateway, erp.url)
    first = await start_service(settings)
    try:
        notification_id, message = await order_with_buttons(first, telegram)
        assert await press(telegram, message, buttons(message)[1][1]) == ACCEPTED

        async def refused() -> bool:
            shown = await presses_shown(first, notification_id)
            return bool(shown and shown[0]["last_error"])

        await eventually(refused, what="the ERP's 503 recorded")
    finally:
        await first.client.close()
    [pending] = await _presses_after_stop(database_url)
    assert pending["delivered_at"] is None and "503" in pending["last_error"]

    erp.answers.clear()
    seen = len(erp.received)
    second = await start_service(settings)
    try:

        async def delivered() -> bool:
            return any(p["delivered_at"] for p in await presses_shown(second, notification_id))

        await eventually(delivered, what="the press delivered after the restart")
        body, signed = erp.received[-1]
        assert signed and body["action"] == "call_me" and body["event_id"] == "erp-btn-1"
        assert len(erp.received) == seen + 1
    finally:
        await second.client.close()


async def _presses_after_stop(database_url: str) -> list[dict[str, Any]]:
    """The stored presses, read straight from the database while no Vestnik runs."""
    db = create_database(database_url)
    try:
        async with db.sessions() as session:
            rows = (await session.execute(select(ErpActionPress))).scalars().all()
            return [
                {"delivered_at": row.delivered_at, "last_error": row.last_error} for row in rows
            ]
    finally:
        await db.dispose()
