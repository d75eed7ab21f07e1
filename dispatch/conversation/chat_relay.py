"""The chat between a client and the shop, relayed through the bot.

With `notify.chat_enabled`, a client's message goes to the responsible manager's usable
chats (or to the admins' when that manager has none) under a header naming the client; a
manager's Telegram *reply* to that relayed copy goes back to the chat the client wrote
from. Media is copied (`copyMessage`) after the header. Every message is stored in
`chat_messages` (one row per relayed copy, so a reply to any copy finds its client). With
the chat off — or nobody to relay to — the client gets `notify.auto_reply`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.types import LinkPreviewOptions, ReplyParameters

from dispatch.conversation.bot_texts import BotTexts
from storage import directory, inbox, links
from storage.database import Database
from storage.directory import ClientRef, ManagerRef

logger = logging.getLogger(__name__)

_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A message somebody wrote to the bot, as the relay needs it."""

    chat_id: int
    message_id: int
    text: str | None
    """The text or the media caption."""
    has_media: bool
    sender_name: str


class RelayOutcome(StrEnum):
    RELAYED = "relayed"
    AUTO_REPLY = "auto_reply"
    """The chat is off, or nobody could receive the message: the client got auto_reply."""


class ReplyOutcome(StrEnum):
    SENT = "sent"
    UNKNOWN = "unknown"
    """The replied-to message is not a relayed client message."""
    FAILED = "failed"


class ChatRelay:
    def __init__(self, *, db: Database, bot: Bot, texts: BotTexts) -> None:
        self._db = db
        self._bot = bot
        self._texts = texts

    async def from_client(
        self,
        client: ClientRef,
        message: IncomingMessage,
        *,
        chat_enabled: bool,
        auto_reply: str,
    ) -> RelayOutcome:
        relayed: list[tuple[int, int]] = []
        if chat_enabled:
            async with self._db.sessions() as session:
                targets = await links.usable_manager_chats(
                    session, [client.manager_id] if client.manager_id else []
                )
                if not targets:
                    targets = await links.usable_manager_chats(
                        session, await directory.admin_ids(session)
                    )
            header = self._texts.render(
                "chat_to_manager.html.j2",
                client=client,
                sender_name=message.sender_name,
                text=message.text,
                has_media=message.has_media,
            )
            for target in targets:
                copies = await self._relay(target, header, message)
                if copies:
                    # Stored at once: the manager's reply looks the copy up.
                    await self._store_incoming(client, message, copies)
                    relayed.extend(copies)
        if not relayed:
            await self._store_incoming(client, message, [(None, None)])
        if relayed:
            logger.info(
                "client %s wrote; relayed to %d chat(s)",
                client.id,
                len({target for target, _ in relayed}),
            )
            return RelayOutcome.RELAYED
        if chat_enabled:
            logger.info("client %s wrote, but no manager or admin chat is usable", client.id)
        await self._send(
            message.chat_id, self._texts.render("auto_reply.html.j2", text=auto_reply)
        )
        return RelayOutcome.AUTO_REPLY

    async def _store_incoming(
        self,
        client: ClientRef,
        message: IncomingMessage,
        copies: Sequence[tuple[int | None, int | None]],
    ) -> None:
        async with self._db.transaction() as session:
            for target, copy_id in copies:
                await inbox.add_chat_message(
                    session,
                    client_id=client.id,
                    manager_id=None,
                    direction="in",
                    chat_id=message.chat_id,
                    telegram_message_id=message.message_id,
                    relayed_chat_id=target,
                    relayed_message_id=copy_id,
                    text=message.text,
                )

    async def _relay(
        self, target: int, header: str, message: IncomingMessage
    ) -> list[tuple[int, int]]:
        """Send the header (and a copy of the media) to one chat; (chat, message) sent."""
        header_id = await self._send(target, header)
        if header_id is None:
            return []
        sent = [(target, header_id)]
        if message.has_media:
            try:
                copy = await self._bot.copy_message(
                    chat_id=target,
                    from_chat_id=message.chat_id,
                    message_id=message.message_id,
                    reply_parameters=ReplyParameters(
                        message_id=header_id, allow_sending_without_reply=True
                    ),
                )
            except TelegramAPIError as exc:
                logger.warning("copy of a client message to chat %s failed: %s", target, exc)
            else:
                sent.append((target, copy.message_id))
        return sent

    async def to_client(
        self,
        manager: ManagerRef,
        message: IncomingMessage,
        *,
        reply_to_message_id: int,
    ) -> ReplyOutcome:
        """Send a manager's reply to a relayed client message back to that client's chat."""
        async with self._db.sessions() as session:
            original = await inbox.find_relayed_client_message(
                session, relayed_chat_id=message.chat_id, relayed_message_id=reply_to_message_id
            )
        if original is None:
            return ReplyOutcome.UNKNOWN
        client_chat = original.client_chat_id
        sent_id: int | None
        if message.has_media:
            try:
                copy = await self._bot.copy_message(
                    chat_id=client_chat,
                    from_chat_id=message.chat_id,
                    message_id=message.message_id,
                )
            except TelegramForbiddenError:
                await self._mark_blocked(client_chat)
                sent_id = None
            except TelegramAPIError as exc:
                logger.warning("a manager's reply to chat %s failed: %s", client_chat, exc)
                sent_id = None
            else:
                sent_id = copy.message_id
        else:
            sent_id = await self._send(
                client_chat,
                self._texts.render("chat_to_client.html.j2", manager=manager, text=message.text),
            )
        if sent_id is None:
            return ReplyOutcome.FAILED
        async with self._db.transaction() as session:
            await inbox.add_chat_message(
                session,
                client_id=original.client_id,
                manager_id=manager.id,
                direction="out",
                chat_id=message.chat_id,
                telegram_message_id=message.message_id,
                relayed_chat_id=client_chat,
                relayed_message_id=sent_id,
                text=message.text,
            )
        logger.info("manager %s answered client %s", manager.id, original.client_id)
        return ReplyOutcome.SENT

    async def _send(self, chat_id: int, text: str) -> int | None:
        try:
            sent = await self._bot.send_message(
                chat_id, text, parse_mode="HTML", link_preview_options=_NO_PREVIEW
            )
        except TelegramForbiddenError:
            await self._mark_blocked(chat_id)
            return None
        except TelegramAPIError as exc:
            logger.warning("chat message to %s failed: %s", chat_id, exc)
            return None
        return sent.message_id

    async def _mark_blocked(self, chat_id: int) -> None:
        async with self._db.transaction() as session:
            await directory.set_chat_flags(session, chat_id, blocked=True)
        logger.info("chat %s blocked the bot; marked blocked", chat_id)
