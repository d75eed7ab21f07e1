"""Subscribing to the bot, as a client (or a manager) experiences it: /start and the share
button, a deep link from the admin API, /stop and /start again, blocking the bot."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select, update

from storage.models import LinkToken, UnmatchedContact
from storage.types import utcnow
from tests.conftest import Service
from tests.events import make_event
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram
from tests.integration.test_bot_support import (
    CLIENT_CHAT,
    CLIENT_PHONE,
    MANAGER_CHAT,
    OTHER_CHAT,
    STRANGER_CHAT,
    add_client,
    add_manager,
    eventually,
    links,
    say,
)


async def test_start_offers_the_share_phone_button(
    live_service: Service, telegram: FakeTelegram
) -> None:
    [reply] = await say(telegram, telegram.command(STRANGER_CHAT, "/start"))

    assert "Поделиться номером телефона" in (reply.text or "")
    assert reply.parse_mode == "HTML"
    keyboard = (reply.reply_markup or {})["keyboard"]
    assert keyboard[0][0]["request_contact"] is True
    assert await links(live_service, STRANGER_CHAT) == []


async def test_a_client_subscribes_in_two_taps_and_reads_the_order_ready_message(
    live_service: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    await add_client(live_service)
    await say(telegram, telegram.command(CLIENT_CHAT, "/start"))

    [reply] = await say(telegram, telegram.contact(CLIENT_CHAT, "79161234567"))

    assert "вы подписаны" in (reply.text or "")
    assert "ООО Ромашка" in (reply.text or "")
    assert (reply.reply_markup or {}).get("remove_keyboard") is True
    [link] = await links(live_service, CLIENT_CHAT)
    assert (link.client_id, link.user_id, link.stopped, link.blocked) == (
        "C-1001",
        CLIENT_CHAT,
        False,
        False,
    )

    status, body = await live_service.post_event(make_event("client_order.ready"))
    assert status == 202, body
    [note] = body["notifications"]
    assert note["channel"] == "telegram"
    await live_service.wait_for_status(note["id"], "sent")
    assert "ЗК-000123" in (telegram.messages_to(CLIENT_CHAT)[-1].text or "")
    assert sms_gateway.sent == []


async def test_one_phone_of_several_clients_links_them_all(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await add_client(live_service, "C-1", name="ООО Ромашка")
    await add_client(live_service, "C-2", name="ИП Васильев")

    [reply] = await say(telegram, telegram.contact(CLIENT_CHAT, "+7 916 123-45-67"))

    assert "ООО Ромашка" in (reply.text or "")
    assert "ИП Васильев" in (reply.text or "")
    assert sorted(link.client_id or "" for link in await links(live_service, CLIENT_CHAT)) == [
        "C-1",
        "C-2",
    ]


async def test_several_people_of_one_company_share_its_notifications(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await add_client(live_service)
    await say(telegram, telegram.contact(CLIENT_CHAT, CLIENT_PHONE))
    await say(telegram, telegram.contact(OTHER_CHAT, CLIENT_PHONE))

    status, body = await live_service.post_event(make_event("client_order.ready"))
    assert status == 202, body
    await live_service.wait_for_status(body["notifications"][0]["id"], "sent")

    await telegram.wait_for_sent(OTHER_CHAT, 2)
    assert "ЗК-000123" in (telegram.messages_to(CLIENT_CHAT)[-1].text or "")
    assert "ЗК-000123" in (telegram.messages_to(OTHER_CHAT)[-1].text or "")


async def test_someone_elses_contact_is_refused(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await add_client(live_service)

    [reply] = await say(
        telegram, telegram.contact(STRANGER_CHAT, CLIENT_PHONE, user_id=CLIENT_CHAT)
    )

    assert "только по своему номеру" in (reply.text or "")
    assert await links(live_service, STRANGER_CHAT) == []
    # A contact without a user id (typed in by hand) is not the sender's own either.
    [reply] = await say(telegram, telegram.contact(STRANGER_CHAT, CLIENT_PHONE, user_id=None))
    assert "только по своему номеру" in (reply.text or "")
    assert await links(live_service, STRANGER_CHAT) == []


async def test_a_phone_that_matches_nobody_gets_a_clear_answer_and_is_recorded(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await add_client(live_service)

    [reply] = await say(
        telegram, telegram.contact(STRANGER_CHAT, "+79990001122", first_name="Пётр")
    )

    assert "не найден" in (reply.text or "")
    assert "+79990001122" in (reply.text or "")
    assert await links(live_service, STRANGER_CHAT) == []
    async with live_service.db.sessions() as session:
        [row] = (await session.execute(select(UnmatchedContact))).scalars().all()
    assert (row.chat_id, row.user_id, row.phone, row.name) == (
        STRANGER_CHAT,
        STRANGER_CHAT,
        "+79990001122",
        "Пётр",
    )


async def test_a_manager_subscribes_by_contact_and_gets_the_manager_commands(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await add_manager(live_service, phone="+79031234567")

    [reply] = await say(telegram, telegram.contact(MANAGER_CHAT, "79031234567"))

    assert "менеджер" in (reply.text or "")
    [link] = await links(live_service, MANAGER_CHAT)
    assert (link.manager_id, link.client_id) == ("M-7", None)
    [help_text] = await say(telegram, telegram.command(MANAGER_CHAT, "/help"))
    assert "/journal" in (help_text.text or "")


async def deep_link(service: Service, client_id: str = "C-1001") -> str:
    status, body = await service.admin("GET", f"/api/v1/clients/{client_id}/telegram-link")
    assert status == 200, body
    assert body["client_id"] == client_id
    token = body["token"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", token)
    assert body["url"] == f"https://t.me/vestnik_test_bot?start={token}"
    return str(token)


async def test_a_deep_link_subscribes_at_once_and_only_its_first_user(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await add_client(live_service, phone=None)
    token = await deep_link(live_service)

    [reply] = await say(telegram, telegram.command(CLIENT_CHAT, "/start", token))
    assert "вы подписаны" in (reply.text or "")
    assert [link.client_id for link in await links(live_service, CLIENT_CHAT)] == ["C-1001"]

    # Forwarded to somebody else, it links nothing: the token is bound to its first user.
    [refused] = await say(telegram, telegram.command(STRANGER_CHAT, "/start", token))
    assert "уже воспользовался" in (refused.text or "")
    assert await links(live_service, STRANGER_CHAT) == []

    # Its own user may open it again (say, after /stop).
    [again] = await say(telegram, telegram.command(CLIENT_CHAT, "/start", token))
    assert "вы подписаны" in (again.text or "")


async def test_an_expired_or_unknown_deep_link_is_refused(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await add_client(live_service, phone=None)
    token = await deep_link(live_service)
    async with live_service.db.transaction() as session:
        await session.execute(
            update(LinkToken)
            .where(LinkToken.token == token)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )

    [expired] = await say(telegram, telegram.command(CLIENT_CHAT, "/start", token))
    assert "истёк" in (expired.text or "")
    [unknown] = await say(telegram, telegram.command(CLIENT_CHAT, "/start", "no-such-token"))
    assert "недействительна" in (unknown.text or "")
    [forged] = await say(telegram, telegram.command(CLIENT_CHAT, "/start", "a" * 65))
    assert "недействительна" in (forged.text or "")
    assert await links(live_service, CLIENT_CHAT) == []


async def test_the_deep_link_endpoint_refuses_what_it_cannot_link(
    live_service: Service,
) -> None:
    status, body = await live_service.admin("GET", "/api/v1/clients/C-404/telegram-link")
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await live_service.admin("GET", "/api/v1/managers/M-404/telegram-link")
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await live_service.admin(
        "GET", "/api/v1/clients/C-1001/telegram-link", token=None
    )
    assert (status, body["error"]["code"]) == (401, "unauthorized")


async def test_without_a_bot_there_is_no_deep_link(service: Service) -> None:
    await add_client(service)
    status, body = await service.admin("GET", "/api/v1/clients/C-1001/telegram-link")
    assert (status, body["error"]["code"]) == (409, "telegram_not_configured")


async def test_a_manager_subscribes_by_the_manager_deep_link(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await add_manager(live_service, phone=None)
    status, body = await live_service.admin("GET", "/api/v1/managers/M-7/telegram-link")
    assert status == 200, body

    [reply] = await say(telegram, telegram.command(MANAGER_CHAT, "/start", body["token"]))

    assert "Иван Петров" in (reply.text or "")
    assert [link.manager_id for link in await links(live_service, MANAGER_CHAT)] == ["M-7"]


async def test_stop_sends_the_next_notification_by_sms_and_start_resumes_telegram(
    live_service: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    await add_client(live_service)
    await say(telegram, telegram.contact(CLIENT_CHAT, CLIENT_PHONE))

    [stopped] = await say(telegram, telegram.command(CLIENT_CHAT, "/stop"))
    assert "отключены" in (stopped.text or "")
    assert [link.stopped for link in await links(live_service, CLIENT_CHAT)] == [True]

    status, body = await live_service.post_event(make_event("client_order.ready"))
    assert status == 202, body
    [note] = body["notifications"]
    assert note["channel"] == "sms"
    await live_service.wait_for_status(note["id"], "sent")
    assert len(sms_gateway.sent) == 1

    [resumed] = await say(telegram, telegram.command(CLIENT_CHAT, "/start"))
    assert "снова включены" in (resumed.text or "")
    assert [link.stopped for link in await links(live_service, CLIENT_CHAT)] == [False]

    status, body = await live_service.post_event(make_event("client_order.ready"))
    assert status == 202, body
    [note] = body["notifications"]
    assert note["channel"] == "telegram"
    await live_service.wait_for_status(note["id"], "sent")
    assert "ЗК-000123" in (telegram.messages_to(CLIENT_CHAT)[-1].text or "")
    assert len(sms_gateway.sent) == 1


async def test_stop_in_a_chat_that_is_not_subscribed(
    live_service: Service, telegram: FakeTelegram
) -> None:
    [reply] = await say(telegram, telegram.command(STRANGER_CHAT, "/stop"))
    assert "не подписаны" in (reply.text or "")


async def test_blocking_the_bot_marks_the_chat_blocked_and_unblocking_clears_it(
    live_service: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    await add_client(live_service)
    await say(telegram, telegram.contact(CLIENT_CHAT, CLIENT_PHONE))

    telegram.push_update(telegram.my_chat_member(CLIENT_CHAT, "member", "kicked"))

    async def blocked() -> bool:
        return [link.blocked for link in await links(live_service, CLIENT_CHAT)] == [True]

    await eventually(blocked, what="the chat marked blocked")
    status, body = await live_service.post_event(make_event("client_order.ready"))
    assert status == 202, body
    assert body["notifications"][0]["channel"] == "sms"

    telegram.push_update(telegram.my_chat_member(CLIENT_CHAT, "kicked", "member"))

    async def unblocked() -> bool:
        return [link.blocked for link in await links(live_service, CLIENT_CHAT)] == [False]

    await eventually(unblocked, what="the chat marked unblocked")
    status, body = await live_service.post_event(make_event("client_order.ready"))
    assert status == 202, body
    assert body["notifications"][0]["channel"] == "telegram"
