"""A manager reads the journal in Telegram: which order each line is about, by which channel
it went, and why — in Russian — a message that Telegram could not deliver went by SMS.

The real bot (aiogram, polling the loopback Telegram fake), the real workers and the SMS
gateway fake, on SQLite and PostgreSQL (the document number is read from the stored event's
JSON, which the two databases index differently).
"""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import Service
from tests.events import make_event
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram
from tests.integration.test_bot_support import CLIENT_CHAT, MANAGER_CHAT, add_client, add_manager
from tests.integration.test_bot_support import say as say_to_bot

# Words of the English history reasons that must not reach a manager's /status.
ENGLISH = re.compile(r"\b(reserve|route|subscribed|failed|accepted|blocked|client|the)\b")


async def setup_shop(service: Service) -> None:
    """Manager M-7 and their client C-1001 (with a phone), both subscribed to the bot."""
    await add_manager(service, chat_id=MANAGER_CHAT)
    await add_client(service)
    await service.link_chat(CLIENT_CHAT, client_id="C-1001")


async def order_ready(service: Service, number: str) -> int:
    """The ERP says order `number` is ready; the client's notification id."""
    event = make_event("client_order.ready")
    event["document"]["number"] = number
    status, body = await service.post_event(event)
    assert status == 202, body
    [note] = [n for n in body["notifications"] if n["recipient"] == "client"]
    return int(note["id"])


def entry_of(journal: str, notification_id: int) -> str:
    """The journal's lines about one notification (entries are separated by a blank line)."""
    mark = re.compile(rf"№{notification_id}(?!\d)")
    [entry] = [part for part in journal.split("\n\n") if mark.search(part)]
    return entry


async def say(telegram: FakeTelegram, command: str, args: str | None = None) -> str:
    [reply] = await say_to_bot(telegram, telegram.command(MANAGER_CHAT, command, args))
    return reply.text or ""


async def test_journal_lines_name_the_order_and_the_channel(
    live_service: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    await setup_shop(live_service)
    by_telegram = await order_ready(live_service, "ЗК-000457")
    await live_service.wait_for_status(by_telegram, "sent")
    # The client blocks the bot: the next order's message goes by the reserve, SMS.
    telegram.block(CLIENT_CHAT)
    by_sms = await order_ready(live_service, "ЗК-000458")
    await live_service.wait_for_status(by_sms, "sent")
    [sms] = sms_gateway.sent
    assert "ЗК-000458" in sms.text

    journal = await say(telegram, "/journal")

    first = entry_of(journal, by_telegram)
    assert "Заказ ЗК-000457" in first and "· Telegram" in first, first
    assert "ООО Ромашка" in first and "отправлено" in first
    second = entry_of(journal, by_sms)
    assert "Заказ ЗК-000458" in second and "· SMS" in second, second
    assert "ЗК-000457" not in second and "Telegram" not in second

    # The filter keeps the same lines, documents and all.
    sent_only = await say(telegram, "/journal", "sent")
    assert "Заказ ЗК-000457" in entry_of(sent_only, by_telegram)


async def test_status_of_a_failover_to_sms_speaks_russian(
    live_service: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    await setup_shop(live_service)
    telegram.block(CLIENT_CHAT)
    notification_id = await order_ready(live_service, "ЗК-000459")
    await live_service.wait_for_status(notification_id, "sent")
    reasons = [reason for *_, reason in await live_service.history(notification_id)]
    # What the journal stores (and the API shows) stays English.
    assert any("reserve route sms" in (reason or "") for reason in reasons), reasons

    text = await say(telegram, "/status", str(notification_id))

    assert "Документ: Заказ ЗК-000459" in text
    assert "Канал: SMS" in text
    history = text.split("История", 1)[1]
    assert "клиент подписан на бота" in history
    assert "Telegram не доставил: пользователь заблокировал бота; резервный канал — SMS" in (
        history
    )
    assert "принято к отправке" in history
    assert not ENGLISH.search(history), history
    assert len(sms_gateway.sent) == 1


async def test_a_notification_without_a_document_number_is_listed_plainly(
    live_service: Service, telegram: FakeTelegram
) -> None:
    """`document` is free-form: an event without a number still gets its line."""
    await setup_shop(live_service)
    event: dict[str, Any] = make_event("client_order.ready")
    event["document"] = {"kind": "client_order", "amount": 100}
    status, body = await live_service.post_event(event)
    assert status == 202, body
    [note] = [n for n in body["notifications"] if n["recipient"] == "client"]

    entry = entry_of(await say(telegram, "/journal"), int(note["id"]))

    assert entry.splitlines()[-2:] == ["Заказ клиента готов к выдаче", "→ ООО Ромашка · Telegram"]
