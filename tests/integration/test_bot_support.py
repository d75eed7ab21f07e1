"""Helpers for the bot scenarios (no tests here): people writing to the bot through the fake
Bot API, the real aiogram Dispatcher of a running Vestnik answering them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select

from storage import directory
from storage.models import ChatMessage, TelegramLink
from tests.conftest import Service
from tests.fakes.telegram import FakeTelegram, SentMessage

CLIENT_CHAT = 555_001
OTHER_CHAT = 555_002
MANAGER_CHAT = 777_007
ADMIN_CHAT = 777_001
STRANGER_CHAT = 999_009
CLIENT_PHONE = "+79161234567"


async def say(
    telegram: FakeTelegram,
    update: dict[str, Any],
    *,
    replies: int = 1,
    chat_id: int | None = None,
    timeout: float = 5.0,  # noqa: ASYNC109 - a test deadline
) -> list[SentMessage]:
    """Push an update and wait for `replies` new messages to `chat_id` (default: the
    update's chat); returns just those."""
    if chat_id is None:
        body = update.get("message") or update.get("callback_query", {}).get("message") or {}
        chat_id = int(body["chat"]["id"])
    before = len(telegram.messages_to(chat_id))
    telegram.push_update(update)
    sent = await telegram.wait_for_sent(chat_id, before + replies, timeout=timeout)
    return sent[before:]


async def eventually(
    check: Callable[[], Awaitable[bool]],
    *,
    within: float = 5.0,
    what: str = "condition",
) -> None:
    """Poll `check` until it holds (short sleeps, short deadline)."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} did not happen within {within} s")
        await asyncio.sleep(0.02)


async def add_client(
    service: Service,
    client_id: str = "C-1001",
    *,
    name: str = "ООО Ромашка",
    phone: str | None = CLIENT_PHONE,
    manager_id: str | None = "M-7",
) -> None:
    status, body = await service.admin(
        "PUT",
        f"/api/v1/clients/{client_id}",
        json_body={"name": name, "phone": phone, "manager_id": manager_id},
    )
    assert status in (200, 201), body


async def add_manager(
    service: Service,
    manager_id: str = "M-7",
    *,
    name: str = "Иван Петров",
    phone: str | None = "+79031234567",
    is_admin: bool = False,
    chat_id: int | None = None,
) -> None:
    """A manager record (as the ERP's events create them), linked to `chat_id` if given."""
    async with service.db.transaction() as session:
        await directory.upsert_manager(
            session, {"id": manager_id, "name": name, "phone": phone, "is_admin": is_admin}
        )
    if chat_id is not None:
        await service.link_chat(chat_id, manager_id=manager_id)


async def links(service: Service, chat_id: int) -> list[TelegramLink]:
    async with service.db.sessions() as session:
        result = await session.execute(
            select(TelegramLink).where(TelegramLink.chat_id == chat_id).order_by(TelegramLink.id)
        )
        return list(result.scalars())


async def chat_messages(service: Service) -> list[ChatMessage]:
    async with service.db.sessions() as session:
        result = await session.execute(select(ChatMessage).order_by(ChatMessage.id))
        return list(result.scalars())


def buttons(message: SentMessage) -> list[tuple[str, str]]:
    """(label, callback_data) of the message's inline keyboard."""
    markup = message.reply_markup or {}
    return [
        (button["text"], button.get("callback_data", ""))
        for row in markup.get("inline_keyboard", [])
        for button in row
    ]
