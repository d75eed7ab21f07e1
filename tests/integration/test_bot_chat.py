"""The chat with the shop: a client writes, the responsible manager reads and answers by
replying in Telegram; with the chat off, the client gets the auto-reply."""

from __future__ import annotations

from tests.conftest import Service
from tests.fakes.telegram import FakeTelegram
from tests.integration.test_bot_support import (
    ADMIN_CHAT,
    CLIENT_CHAT,
    CLIENT_PHONE,
    MANAGER_CHAT,
    STRANGER_CHAT,
    add_client,
    add_manager,
    chat_messages,
    eventually,
    say,
)


async def enable_chat(service: Service, enabled: bool = True) -> None:
    status, body = await service.admin(
        "PUT", "/api/v1/settings", json_body={"chat_enabled": enabled}
    )
    assert status == 200, body


async def stored_count(service: Service, count: int) -> None:
    """Wait until `count` chat messages are stored (the relay stores after sending)."""

    async def stored() -> bool:
        return len(await chat_messages(service)) >= count

    await eventually(stored, what=f"{count} chat message(s) stored")


async def subscribed_client(service: Service, telegram: FakeTelegram) -> None:
    await add_client(service)
    await say(telegram, telegram.contact(CLIENT_CHAT, CLIENT_PHONE, first_name="Ольга"))


async def test_a_client_writes_and_the_managers_reply_comes_back(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await add_manager(live_service, chat_id=MANAGER_CHAT)
    await subscribed_client(live_service, telegram)
    await enable_chat(live_service)

    [relayed] = await say(
        telegram,
        telegram.message(CLIENT_CHAT, "Когда привезут <фильтр> & масло?"),
        chat_id=MANAGER_CHAT,
    )
    text = relayed.text or ""
    assert "ООО Ромашка" in text
    assert "C-1001" in text
    # The client's words are escaped for HTML, so they cannot break or forge the markup.
    assert "Когда привезут &lt;фильтр&gt; &amp; масло?" in text
    assert relayed.parse_mode == "HTML"
    await stored_count(live_service, 1)

    [answer] = await say(
        telegram,
        telegram.message(MANAGER_CHAT, "Завтра после 12:00", reply_to=relayed.message_id),
        chat_id=CLIENT_CHAT,
    )
    assert "Завтра после 12:00" in (answer.text or "")
    assert "Иван Петров" in (answer.text or "")

    await stored_count(live_service, 2)
    stored = [
        (m.direction, m.client_id, m.manager_id, m.chat_id, m.relayed_chat_id, m.text)
        for m in await chat_messages(live_service)
    ]
    assert stored == [
        ("in", "C-1001", None, CLIENT_CHAT, MANAGER_CHAT, "Когда привезут <фильтр> & масло?"),
        ("out", "C-1001", "M-7", MANAGER_CHAT, CLIENT_CHAT, "Завтра после 12:00"),
    ]


async def test_without_a_linked_responsible_manager_the_admins_read_the_client(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await add_manager(live_service)  # the responsible one, not in Telegram
    await add_manager(live_service, "M-1", name="Анна Админ", is_admin=True, chat_id=ADMIN_CHAT)
    await subscribed_client(live_service, telegram)
    await enable_chat(live_service)

    [relayed] = await say(
        telegram, telegram.message(CLIENT_CHAT, "Есть кто-нибудь?"), chat_id=ADMIN_CHAT
    )
    assert "Есть кто-нибудь?" in (relayed.text or "")
    await stored_count(live_service, 1)

    [answer] = await say(
        telegram,
        telegram.message(ADMIN_CHAT, "Да, слушаю вас", reply_to=relayed.message_id),
        chat_id=CLIENT_CHAT,
    )
    assert "Анна Админ" in (answer.text or "")


async def test_a_photo_from_the_client_is_copied_to_the_manager(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await add_manager(live_service, chat_id=MANAGER_CHAT)
    await subscribed_client(live_service, telegram)
    await enable_chat(live_service)
    photo = telegram.message(CLIENT_CHAT, "unused")
    photo["message"].pop("text")
    photo["message"]["caption"] = "Вот такая деталь"
    photo["message"]["photo"] = [
        {"file_id": "PHOTO1", "file_unique_id": "U1", "width": 90, "height": 90}
    ]

    header, copy = await say(telegram, photo, replies=2, chat_id=MANAGER_CHAT)

    assert "Вот такая деталь" in (header.text or "")
    assert copy.method == "copyMessage"
    assert copy.params["from_chat_id"] == CLIENT_CHAT


async def test_with_the_chat_off_the_client_gets_the_auto_reply(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await add_manager(live_service, chat_id=MANAGER_CHAT)
    await subscribed_client(live_service, telegram)
    status, _ = await live_service.admin(
        "PUT",
        "/api/v1/settings",
        json_body={"chat_enabled": False, "auto_reply": "Чат выключен, звоните: 8 800 <100>"},
    )
    assert status == 200

    [reply] = await say(telegram, telegram.message(CLIENT_CHAT, "Здравствуйте!"))

    assert reply.text == "Чат выключен, звоните: 8 800 &lt;100&gt;"
    assert reply.parse_mode == "HTML"
    assert telegram.messages_to(MANAGER_CHAT) == []
    await stored_count(live_service, 1)
    [stored] = await chat_messages(live_service)
    assert (stored.direction, stored.client_id, stored.relayed_chat_id, stored.text) == (
        "in",
        "C-1001",
        None,
        "Здравствуйте!",
    )


async def test_with_nobody_to_read_it_the_client_gets_the_auto_reply(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await subscribed_client(live_service, telegram)
    await enable_chat(live_service)

    [reply] = await say(telegram, telegram.message(CLIENT_CHAT, "Алло?"))

    assert "позвоните нам" in (reply.text or "")


async def test_a_manager_writing_without_replying_gets_a_hint(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await add_manager(live_service, chat_id=MANAGER_CHAT)
    await enable_chat(live_service)

    [reply] = await say(telegram, telegram.message(MANAGER_CHAT, "Привет"))

    assert "ответьте (Reply)" in (reply.text or "")
    assert await chat_messages(live_service) == []


async def test_a_stranger_writing_is_told_how_to_subscribe(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await enable_chat(live_service)

    [reply] = await say(telegram, telegram.message(STRANGER_CHAT, "Здравствуйте"))

    assert "не подписаны" in (reply.text or "")
    assert (reply.reply_markup or {})["keyboard"][0][0]["request_contact"] is True
    assert await chat_messages(live_service) == []
