"""Managers in Telegram: one-tap confirmations from an ERP event to the client's chat, the
not-sent flow, the journal commands — and everybody else refused."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from bot.keys import TELEGRAM
from handlers.common.keys import SCHEDULER
from storage.models import ManagerPrompt, Notification
from storage.types import utcnow
from tests.conftest import Service
from tests.events import make_event
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram, SentMessage
from tests.integration.test_bot_support import (
    ADMIN_CHAT,
    CLIENT_CHAT,
    MANAGER_CHAT,
    STRANGER_CHAT,
    add_client,
    add_manager,
    buttons,
    eventually,
    say,
)

OTHER_MANAGER_CHAT = 777_008


async def setup_shop(service: Service) -> None:
    """Manager M-7 and client C-1001 (whose manager M-7 is) both subscribed."""
    await add_manager(service, chat_id=MANAGER_CHAT)
    await add_client(service)
    await service.link_chat(CLIENT_CHAT, client_id="C-1001")


async def event_type(service: Service, **changes: Any) -> None:
    status, body = await service.admin(
        "PUT", "/api/v1/event-types/client_order.ready", json_body=changes
    )
    assert status == 200, body


async def post(service: Service) -> dict[str, Any]:
    status, body = await service.post_event(make_event("client_order.ready"))
    assert status == 202, body
    [note] = [n for n in body["notifications"] if n["recipient"] == "client"]
    return dict(note)


async def press(
    telegram: FakeTelegram,
    prompt: SentMessage,
    data: str,
    *,
    chat_id: int = MANAGER_CHAT,
    from_id: int | None = None,
) -> str | None:
    """Press a button (or forge a press) and return the callback answer's text."""
    before = len(telegram.callback_answers)
    telegram.push_update(
        telegram.callback_query(chat_id, data, message_id=prompt.message_id, from_id=from_id)
    )
    await telegram.wait_until(lambda: len(telegram.callback_answers) > before)
    return telegram.callback_answers[-1].text


async def status_of(service: Service, notification_id: int) -> str:
    async with service.db.sessions() as session:
        row = await session.get(Notification, notification_id)
    assert row is not None
    return row.status


async def prompts_of(service: Service, notification_id: int) -> list[ManagerPrompt]:
    async with service.db.sessions() as session:
        result = await session.execute(
            select(ManagerPrompt).where(ManagerPrompt.notification_id == notification_id)
        )
        return list(result.scalars())


async def prompted(
    service: Service, telegram: FakeTelegram, notification_id: int, chat_id: int = MANAGER_CHAT
) -> SentMessage:
    """The prompt message, once it is sent and recorded."""
    [prompt] = await telegram.wait_for_sent(chat_id)

    async def recorded() -> bool:
        return bool(await prompts_of(service, notification_id))

    await eventually(recorded, what="the prompt recorded")
    return prompt


async def awaiting_prompt(
    service: Service, telegram: FakeTelegram
) -> tuple[dict[str, Any], SentMessage]:
    await setup_shop(service)
    await event_type(service, confirm_before_send=True)
    note = await post(service)
    assert note["status"] == "awaiting_confirmation"
    return note, await prompted(service, telegram, note["id"])


# --------------------------------------------------------------------------- prompts


async def test_confirmation_from_the_erp_event_to_the_clients_telegram(
    live_service: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    note, prompt = await awaiting_prompt(live_service, telegram)

    assert f"№{note['id']}" in (prompt.text or "")
    assert "ООО Ромашка" in (prompt.text or "")
    assert "ЗК-000123" in (prompt.text or "")
    labels = [label for label, _ in buttons(prompt)]
    assert labels == ["✅ Отправить", "✖️ Отменить"]
    assert telegram.messages_to(CLIENT_CHAT) == []
    [recorded] = await prompts_of(live_service, note["id"])
    assert (recorded.notification_id, recorded.chat_id, recorded.message_id) == (
        note["id"],
        MANAGER_CHAT,
        prompt.message_id,
    )

    answer = await press(telegram, prompt, buttons(prompt)[0][1])

    assert answer == "Отправляем клиенту."
    row = await live_service.wait_for_status(note["id"], "sent")
    [delivered] = telegram.messages_to(CLIENT_CHAT)
    assert "ЗК-000123" in (delivered.text or "")
    assert row.telegram_message_id == delivered.message_id
    history = await live_service.history(note["id"])
    assert [step[:2] for step in history][:2] == [
        (None, "awaiting_confirmation"),
        ("awaiting_confirmation", "pending"),
    ]
    edited = telegram.stored_message(MANAGER_CHAT, prompt.message_id)
    assert edited is not None
    assert "Отправлено клиенту — Иван Петров" in edited["text"]
    assert "reply_markup" not in edited
    assert sms_gateway.sent == []

    # The same button again (a double tap, a second device) does nothing more.
    again = await press(telegram, prompt, buttons(prompt)[0][1])
    assert again == "Не выполнено: статус уведомления — «отправлено»."
    assert len(telegram.messages_to(CLIENT_CHAT)) == 1


async def test_the_journal_names_the_manager_who_confirmed(
    live_service: Service, telegram: FakeTelegram
) -> None:
    note, prompt = await awaiting_prompt(live_service, telegram)
    await press(telegram, prompt, buttons(prompt)[0][1])
    await live_service.wait_for_status(note["id"], "sent")

    status, body = await live_service.admin("GET", f"/api/v1/notifications/{note['id']}")
    assert status == 200
    assert body["history"][1]["actor"] == "manager:M-7"


async def test_cancel_from_the_prompt(live_service: Service, telegram: FakeTelegram) -> None:
    note, prompt = await awaiting_prompt(live_service, telegram)

    answer = await press(telegram, prompt, buttons(prompt)[1][1])

    assert answer == "Уведомление отменено."
    assert await status_of(live_service, note["id"]) == "cancelled"
    edited = telegram.stored_message(MANAGER_CHAT, prompt.message_id)
    assert edited is not None and "Отменено" in edited["text"]
    assert "reply_markup" not in edited
    assert telegram.messages_to(CLIENT_CHAT) == []


async def test_not_sent_flow_to_sent_manually_in_the_journal(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await setup_shop(live_service)
    await event_type(live_service, tracked_by_manager=True)
    status, body = await live_service.admin(
        "PUT",
        "/api/v1/clients/C-1001",
        json_body={"overrides": {"client_order.ready": {"send": False}}},
    )
    assert status == 200, body
    note = await post(live_service)
    assert note["status"] == "not_sent"
    prompt = await prompted(live_service, telegram, note["id"])
    assert "Не отправлено клиенту" in (prompt.text or "")
    [(label, data)] = buttons(prompt)
    assert label == "☑️ Отправлено вручную"

    answer = await press(telegram, prompt, data)

    assert answer == "Отмечено: отправлено вручную."
    status, body = await live_service.admin("GET", f"/api/v1/notifications/{note['id']}")
    assert body["status"] == "sent_manually"
    assert body["history"][-1]["actor"] == "manager:M-7"
    edited = telegram.stored_message(MANAGER_CHAT, prompt.message_id)
    assert edited is not None and "Отправлено вручную" in edited["text"]
    assert telegram.messages_to(CLIENT_CHAT) == []


async def test_the_admins_get_the_prompt_when_the_manager_is_not_in_telegram(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await add_manager(live_service)
    await add_manager(live_service, "M-1", name="Анна Админ", is_admin=True, chat_id=ADMIN_CHAT)
    await add_client(live_service)
    await event_type(live_service, confirm_before_send=True)
    note = await post(live_service)

    prompt = await prompted(live_service, telegram, note["id"], ADMIN_CHAT)
    answer = await press(telegram, prompt, buttons(prompt)[0][1], chat_id=ADMIN_CHAT)

    assert answer == "Отправляем клиенту."
    await live_service.wait_for_status(note["id"], "sent")  # by SMS: the client has no chat


async def test_forged_and_foreign_presses_change_nothing(
    live_service: Service, telegram: FakeTelegram
) -> None:
    note, prompt = await awaiting_prompt(live_service, telegram)
    await add_manager(
        live_service, "M-8", name="Пётр Другой", phone=None, chat_id=OTHER_MANAGER_CHAT
    )
    send = buttons(prompt)[0][1]

    # Somebody who is not a manager.
    answer = await press(telegram, prompt, send, from_id=STRANGER_CHAT)
    assert answer == "Эти кнопки — для менеджеров магазина."
    # Another manager, whose client this is not.
    answer = await press(telegram, prompt, send, chat_id=OTHER_MANAGER_CHAT)
    assert answer == "Это уведомление не найдено среди ваших."
    # Made-up ids and malformed data.
    for data in (
        f"nt:send:{note['id'] + 1000}",
        "nt:send:0",
        "nt:send:-1",
        "nt:send:99999999999999999999",
        "nt:launch:1",
        f"nt:send:{note['id']}:x",
        "garbage",
    ):
        answer = await press(telegram, prompt, data)
        assert answer in (
            "Это уведомление не найдено среди ваших.",
            "Эта кнопка больше не действует.",
        ), data

    # A real id with the button of another state: «sent manually» is for not_sent only.
    answer = await press(telegram, prompt, f"nt:manual:{note['id']}")
    assert answer == "Не выполнено: статус уведомления — «ждёт подтверждения»."

    assert await status_of(live_service, note["id"]) == "awaiting_confirmation"
    assert telegram.messages_to(CLIENT_CHAT) == []
    assert telegram.edits == []


async def test_a_pressed_button_of_a_notification_decided_elsewhere_shows_the_outcome(
    live_service: Service, telegram: FakeTelegram
) -> None:
    note, prompt = await awaiting_prompt(live_service, telegram)
    status, _ = await live_service.admin("POST", f"/api/v1/notifications/{note['id']}/cancel")
    assert status == 200

    answer = await press(telegram, prompt, buttons(prompt)[0][1])

    assert answer == "Не выполнено: статус уведомления — «отменено»."
    edited = telegram.stored_message(MANAGER_CHAT, prompt.message_id)
    assert edited is not None and "Отменено" in edited["text"]
    assert await status_of(live_service, note["id"]) == "cancelled"


async def _prompt_closed(telegram: FakeTelegram, prompt: SentMessage) -> dict[str, Any]:
    async def closed() -> bool:
        edited = telegram.stored_message(MANAGER_CHAT, prompt.message_id)
        return edited is not None and "reply_markup" not in edited

    await eventually(closed, what="the prompt edited without its buttons")
    edited = telegram.stored_message(MANAGER_CHAT, prompt.message_id)
    assert edited is not None
    return edited


async def test_a_confirmation_in_the_admin_api_closes_the_prompt_at_once(
    live_service: Service, telegram: FakeTelegram
) -> None:
    """No stale «Отправить» left in the manager's chat waiting for someone to press it."""
    note, prompt = await awaiting_prompt(live_service, telegram)

    status, _ = await live_service.admin("POST", f"/api/v1/notifications/{note['id']}/confirm")

    assert status == 200
    edited = await _prompt_closed(telegram, prompt)
    assert "ЗК-000123" in edited["text"]
    await live_service.wait_for_status(note["id"], "sent")


async def test_a_confirmation_expired_by_the_scheduler_closes_the_prompt(
    live_service: Service, telegram: FakeTelegram
) -> None:
    note, prompt = await awaiting_prompt(live_service, telegram)

    run = await live_service.app[SCHEDULER].run_job_now(
        "expire_confirmations", now=utcnow() + timedelta(hours=73)
    )

    assert run.result is not None and run.result["expired"] == 1, run
    edited = await _prompt_closed(telegram, prompt)
    assert "Отменено" in edited["text"]
    assert await status_of(live_service, note["id"]) == "cancelled"
    assert telegram.messages_to(CLIENT_CHAT) == []


async def test_a_manager_who_subscribes_later_still_gets_the_prompt(
    live_service: Service, telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    """Nobody was in Telegram when the event came; the manager subscribes afterwards. The
    scheduler's sweep (the same one that prompts when a process stopped before its prompt
    went out) sends the prompt, once."""
    caplog.set_level(logging.INFO, logger="dispatch.journal.manager_prompts")
    await add_manager(live_service)  # not in Telegram yet
    await add_client(live_service)
    await event_type(live_service, confirm_before_send=True)
    note = await post(live_service)
    assert note["status"] == "awaiting_confirmation"

    async def nobody_to_prompt() -> bool:
        return "no manager or admin has a usable Telegram chat" in caplog.text

    await eventually(nobody_to_prompt, what="the prompt at ingest finding nobody")
    await live_service.link_chat(MANAGER_CHAT, manager_id="M-7")
    scheduler = live_service.app[SCHEDULER]

    prompts = live_service.app[TELEGRAM].prompts
    assert prompts is not None
    # Too young: its own prompt may still be on its way. (The sweep itself here: the
    # running scheduler may hold the job's current slot.)
    assert await prompts.sweep(utcnow() + timedelta(seconds=30), window=timedelta(hours=72)) == 0
    # Later runs, in slots of their own (an hour apart; the interval is 300 s).
    run = await scheduler.run_job_now("expire_confirmations", now=utcnow() + timedelta(hours=1))

    assert run.result is not None and run.result["prompted"] == 1, run
    prompt = await prompted(live_service, telegram, note["id"])
    assert [label for label, _ in buttons(prompt)] == ["✅ Отправить", "✖️ Отменить"]
    again = await scheduler.run_job_now("expire_confirmations", now=utcnow() + timedelta(hours=2))
    assert again.result is not None and again.result["prompted"] == 0
    assert len(telegram.messages_to(MANAGER_CHAT)) == 1

    assert await press(telegram, prompt, buttons(prompt)[0][1]) == "Отправляем клиенту."
    await live_service.wait_for_status(note["id"], "sent")


# --------------------------------------------------------------------------- commands


async def sent_notification(service: Service) -> int:
    await setup_shop(service)
    note = await post(service)
    await service.wait_for_status(note["id"], "sent")
    return int(note["id"])


async def test_journal_lists_the_latest_notifications_and_filters_by_status(
    live_service: Service, telegram: FakeTelegram
) -> None:
    notification_id = await sent_notification(live_service)

    [reply] = await say(telegram, telegram.command(MANAGER_CHAT, "/journal"))
    assert f"№{notification_id}" in (reply.text or "")
    assert "отправлено" in (reply.text or "")
    assert "ООО Ромашка" in (reply.text or "")

    [reply] = await say(telegram, telegram.command(MANAGER_CHAT, "/journal", "failed"))
    assert f"№{notification_id}" not in (reply.text or "")
    assert "Уведомлений нет" in (reply.text or "")

    [reply] = await say(telegram, telegram.command(MANAGER_CHAT, "/journal", "lost"))
    assert "Неизвестный статус" in (reply.text or "")


async def test_status_shows_one_notification_with_its_history(
    live_service: Service, telegram: FakeTelegram
) -> None:
    notification_id = await sent_notification(live_service)

    [reply] = await say(telegram, telegram.command(MANAGER_CHAT, "/status", str(notification_id)))

    text = reply.text or ""
    assert f"Уведомление №{notification_id}" in text
    assert "История" in text
    assert "в очереди (erp)" in text
    assert "отправлено (worker)" in text or "отправлено (" in text

    [reply] = await say(telegram, telegram.command(MANAGER_CHAT, "/status", "424242"))
    assert "не найдено" in (reply.text or "")
    [reply] = await say(telegram, telegram.command(MANAGER_CHAT, "/status"))
    assert "/status 123" in (reply.text or "")


async def test_a_manager_sees_only_the_notifications_of_their_clients(
    live_service: Service, telegram: FakeTelegram
) -> None:
    notification_id = await sent_notification(live_service)
    await add_manager(
        live_service, "M-8", name="Пётр Другой", phone=None, chat_id=OTHER_MANAGER_CHAT
    )

    [reply] = await say(
        telegram, telegram.command(OTHER_MANAGER_CHAT, "/status", str(notification_id))
    )
    assert "не найдено" in (reply.text or "")
    [reply] = await say(telegram, telegram.command(OTHER_MANAGER_CHAT, "/journal"))
    assert f"№{notification_id}" not in (reply.text or "")
    [reply] = await say(
        telegram, telegram.command(OTHER_MANAGER_CHAT, "/sent", str(notification_id))
    )
    assert "не найдено" in (reply.text or "")
    assert await status_of(live_service, notification_id) == "sent"


async def test_resend_sends_the_notification_again(
    live_service: Service, telegram: FakeTelegram
) -> None:
    notification_id = await sent_notification(live_service)

    [reply] = await say(telegram, telegram.command(MANAGER_CHAT, "/resend", str(notification_id)))

    assert "снова поставлено в очередь" in (reply.text or "")
    await telegram.wait_for_sent(CLIENT_CHAT, 2)
    await live_service.wait_for_status(notification_id, "sent")
    history = await live_service.history(notification_id)
    assert ("sent", "pending") in [step[:2] for step in history]


async def test_sent_marks_a_notification_sent_manually(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await setup_shop(live_service)
    await event_type(live_service, confirm_before_send=True)
    note = await post(live_service)
    prompt = await prompted(live_service, telegram, note["id"])

    [reply] = await say(telegram, telegram.command(MANAGER_CHAT, "/sent", f"№{note['id']}"))

    assert "отмечено как отправленное вручную" in (reply.text or "")
    assert await status_of(live_service, note["id"]) == "sent_manually"
    # The prompt about it is closed: its buttons are gone.
    edited = telegram.stored_message(MANAGER_CHAT, prompt.message_id)
    assert edited is not None and "reply_markup" not in edited

    [reply] = await say(telegram, telegram.command(MANAGER_CHAT, "/sent", str(note["id"])))
    assert "Нельзя" in (reply.text or "")


async def test_balance_and_test_sms(
    live_service: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    # An admin: /testsms is for admins only (issue 11).
    await add_manager(live_service, is_admin=True, chat_id=MANAGER_CHAT)

    [reply] = await say(telegram, telegram.command(MANAGER_CHAT, "/balance"))
    assert "Баланс SMS-сервиса main" in (reply.text or "")
    assert "1 000,00 ₽" in (reply.text or "")
    assert "Порог уведомления: 100 SMS" in (reply.text or "")

    # The bot, the admin API (and `vestnik balance`) give the same figure and state: the
    # `http` kind has no price API and nothing was sent yet, so the SMS left are unknown
    # (tests/integration/test_balance_in_sms.py has the priced cases).
    sms_gateway.balance = Decimal("40.5")
    [reply] = await say(telegram, telegram.command(MANAGER_CHAT, "/balance"))
    status, api = await live_service.admin("GET", "/api/v1/balance")
    assert status == 200
    assert (api["balance"], api["state"]) == ("40.5", "unknown")
    assert "40,50 ₽" in (reply.text or "")
    assert "цена одного SMS неизвестна" in (reply.text or "")
    sms_gateway.balance = Decimal(1000)

    [reply] = await say(telegram, telegram.command(MANAGER_CHAT, "/testsms", "8 916 123-45-67"))
    assert "Тестовое SMS на +79161234567 отправлено" in (reply.text or "")
    [sms] = sms_gateway.sent
    assert sms.phone == "+79161234567"
    async with live_service.db.sessions() as session:
        [journaled] = (
            (await session.execute(select(Notification).where(Notification.recipient == "admin")))
            .scalars()
            .all()
        )
    assert (journaled.event_type, journaled.status) == ("test_sms", "sent")
    assert journaled.reason is not None
    history = await live_service.history(journaled.id)
    assert "manager:M-7" in (history[0][2] or "")

    [reply] = await say(telegram, telegram.command(MANAGER_CHAT, "/testsms", "hello"))
    assert "/testsms +7" in (reply.text or "")
    assert len(sms_gateway.sent) == 1


async def test_help_lists_the_manager_commands(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await add_manager(live_service, chat_id=MANAGER_CHAT)

    [reply] = await say(telegram, telegram.command(MANAGER_CHAT, "/help"))

    for command in ("/journal", "/status", "/resend", "/sent", "/balance", "/testsms"):
        assert command in (reply.text or "")


async def test_strangers_and_clients_are_refused_the_manager_commands(
    live_service: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    notification_id = await sent_notification(live_service)

    for chat_id in (STRANGER_CHAT, CLIENT_CHAT):
        for command, args in (
            ("/journal", None),
            ("/status", str(notification_id)),
            ("/resend", str(notification_id)),
            ("/sent", str(notification_id)),
            ("/balance", None),
            ("/testsms", "+79161234567"),
        ):
            [reply] = await say(telegram, telegram.command(chat_id, command, args))
            assert "только менеджерам" in (reply.text or ""), (chat_id, command)

    [client_help] = await say(telegram, telegram.command(CLIENT_CHAT, "/help"))
    assert "/journal" not in (client_help.text or "")
    assert await status_of(live_service, notification_id) == "sent"
    assert sms_gateway.sent == []
    # The notification, six refusals and the help: nothing was sent again.
    assert len(telegram.messages_to(CLIENT_CHAT)) == 1 + 6 + 1
