"""The living order card (CONTRACT §9): a subscribed client follows an order in one Telegram
message that the service edits as the ERP reports each step, instead of a new message per
event. Real app, real aiogram against the loopback Bot API, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from storage.models import TelegramCard
from storage.types import utcnow
from tests.conftest import Service, live_settings, start_service
from tests.events import make_event
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram

CHAT = 555_101
ORDER = "ЗК-000123"
STEPS = (
    ("client_order.created", "2026-11-25T09:05:00+03:00"),
    ("client_order.posted", "2026-11-25T11:40:00+03:00"),
    ("client_order.ready", "2026-11-27T16:20:00+03:00"),
)


@asynccontextmanager
async def _start(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway, *, cards: bool
) -> AsyncIterator[Service]:
    settings = live_settings(
        database_url, telegram, sms_gateway, notify={"mode": "live", "telegram_cards": cards}
    )
    running = await start_service(settings)
    try:
        status, body = await running.admin(
            "PUT",
            "/api/v1/clients/C-1001",
            json_body={"name": "ООО Ромашка", "phone": "+7 916 123-45-67", "manager_id": "M-7"},
        )
        assert status in (200, 201), body
        yield running
    finally:
        await running.client.close()


@pytest.fixture
async def shop(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> AsyncIterator[Service]:
    """Cards on, the client not yet subscribed."""
    async with _start(database_url, telegram, sms_gateway, cards=True) as running:
        yield running


def order_event(type_: str, at: str, number: str = ORDER) -> dict[str, Any]:
    event = make_event(type_)
    event["occurred_at"] = at
    event["document"]["number"] = number
    return event


async def deliver(service: Service, event: dict[str, Any]) -> dict[str, Any]:
    """Post the event and wait until the client's notification has gone out."""
    status, body = await service.post_event(event)
    assert status == 202, body
    [client_note] = [n for n in body["notifications"] if n["recipient"] == "client"]
    await service.wait_for_status(client_note["id"], "sent")
    status, note = await service.admin("GET", f"/api/v1/notifications/{client_note['id']}")
    assert status == 200, note
    return dict(note)


def last_reason(note: dict[str, Any]) -> str:
    return str(note["history"][-1]["reason"])


def edit_calls(telegram: FakeTelegram) -> int:
    return sum(1 for call in telegram.calls if call.method == "editMessageText")


async def test_three_steps_of_an_order_edit_one_message(
    shop: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    await shop.link_chat(CHAT, client_id="C-1001")

    notes = [await deliver(shop, order_event(code, at)) for code, at in STEPS]

    [card] = telegram.messages_to(CHAT)
    assert card.parse_mode == "HTML"
    assert [(e.chat_id, e.message_id) for e in telegram.edits] == [(CHAT, card.message_id)] * 2
    text = telegram.stored_message(CHAT, card.message_id)["text"]  # type: ignore[index]
    assert f"Заказ №{ORDER}" in text
    assert "Сейчас: <b>Готов к выдаче</b>" in text
    for line in (
        "25.11.2026 09:05 — Заказ оформлен",
        "25.11.2026 11:40 — Заказ подтверждён",
        "27.11.2026 16:20 — Готов к выдаче",
    ):
        assert line in text
    # Every event keeps its own journal entry, and the journal says what each one did.
    assert [n["status"] for n in notes] == ["sent"] * 3
    assert [last_reason(n) for n in notes] == [
        f"sent a new order card (message {card.message_id})",
        f"edited the order card (message {card.message_id})",
        f"edited the order card (message {card.message_id})",
    ]
    assert sms_gateway.sent == []


async def test_a_deleted_card_is_replaced_and_the_new_one_is_edited_next(
    shop: Service, telegram: FakeTelegram
) -> None:
    await shop.link_chat(CHAT, client_id="C-1001")
    await deliver(shop, order_event(*STEPS[0]))
    [first] = telegram.messages_to(CHAT)
    # The client deletes the card in Telegram.
    bot = telegram.make_bot()
    await bot.delete_message(chat_id=CHAT, message_id=first.message_id)

    replaced = await deliver(shop, order_event(*STEPS[1]))
    ready = await deliver(shop, order_event(*STEPS[2]))

    first_card, second_card = telegram.messages_to(CHAT)
    assert first_card.message_id == first.message_id
    assert last_reason(replaced) == (
        f"sent a new order card (message {second_card.message_id}); the order card (message "
        f"{first.message_id}) could not be edited: Bad Request: message to edit not found"
    )
    assert second_card.text is not None and "Заказ подтверждён" in second_card.text
    # The replacement is the current card now: the next step edits it.
    assert [
        (e.message_id, e.text is not None and "Готов к выдаче" in e.text) for e in telegram.edits
    ] == [(second_card.message_id, True)]
    assert last_reason(ready) == f"edited the order card (message {second_card.message_id})"


async def test_a_card_telegram_refuses_to_edit_is_replaced(
    shop: Service, telegram: FakeTelegram
) -> None:
    await shop.link_chat(CHAT, client_id="C-1001")
    await deliver(shop, order_event(*STEPS[0]))
    telegram.fail_next(
        "editMessageText", error="bad_request", description="Bad Request: message can't be edited"
    )

    note = await deliver(shop, order_event(*STEPS[1]))

    assert len(telegram.messages_to(CHAT)) == 2
    assert "could not be edited: Bad Request: message can't be edited" in last_reason(note)


async def test_a_card_older_than_48_hours_is_not_edited_but_sent_anew(
    shop: Service, telegram: FakeTelegram
) -> None:
    await shop.link_chat(CHAT, client_id="C-1001")
    await deliver(shop, order_event(*STEPS[0]))
    async with shop.db.transaction() as session:
        await session.execute(update(TelegramCard).values(sent_at=utcnow() - timedelta(hours=49)))

    note = await deliver(shop, order_event(*STEPS[1]))

    first, second = telegram.messages_to(CHAT)
    assert edit_calls(telegram) == 0
    assert last_reason(note) == (
        f"sent a new order card (message {second.message_id}); "
        f"the order card (message {first.message_id}) is older than 48 h"
    )
    await deliver(shop, order_event(*STEPS[2]))
    assert [e.message_id for e in telegram.edits] == [second.message_id]


async def test_another_order_gets_its_own_card(shop: Service, telegram: FakeTelegram) -> None:
    await shop.link_chat(CHAT, client_id="C-1001")
    await deliver(shop, order_event(*STEPS[0]))
    await deliver(shop, order_event(STEPS[0][0], STEPS[0][1], number="ЗК-000124"))
    await deliver(shop, order_event(*STEPS[1]))

    first, other = telegram.messages_to(CHAT)
    assert other.text is not None and "ЗК-000124" in other.text
    [edit] = telegram.edits
    assert edit.message_id == first.message_id
    assert edit.text is not None and ORDER in edit.text and "ЗК-000124" not in edit.text


async def test_sms_keeps_one_message_per_event(
    shop: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    for code, at in STEPS[:2]:
        await deliver(shop, order_event(code, at))

    assert len(sms_gateway.sent) == 2
    assert telegram.edits == []


async def test_with_cards_off_each_event_is_a_message_of_its_own(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    async with _start(database_url, telegram, sms_gateway, cards=False) as service:
        await service.link_chat(CHAT, client_id="C-1001")
        notes = [await deliver(service, order_event(code, at)) for code, at in STEPS]

        assert len(telegram.messages_to(CHAT)) == 3
        assert edit_calls(telegram) == 0
        assert {last_reason(n) for n in notes} == {"accepted"}
