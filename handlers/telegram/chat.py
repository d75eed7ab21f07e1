"""Every other private message: the chat between clients and the shop.

- A manager's reply to a relayed client message goes back to that client.
- A linked client's message is relayed to the responsible manager when the chat is on,
  otherwise answered with `auto_reply` (`dispatch.chat_relay` decides).
- A manager writing without replying gets a hint; a stranger gets the way to subscribe;
  an unknown command gets the help of the sender's role.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.types import Message

from dispatch.conversation.bot_texts import BotTexts
from dispatch.conversation.chat_relay import ChatRelay, IncomingMessage, ReplyOutcome
from dispatch.conversation.subscriptions import Identity
from dispatch.runtime_config import RuntimeConfig
from handlers.telegram.client import answer, contact_keyboard
from storage.database import Database


def incoming(message: Message) -> IncomingMessage:
    sender = message.from_user
    return IncomingMessage(
        chat_id=message.chat.id,
        message_id=message.message_id,
        text=message.text if message.text is not None else message.caption,
        has_media=message.text is None,
        sender_name=sender.full_name if sender is not None else "",
    )


async def chat_message(
    message: Message,
    db: Database,
    texts: BotTexts,
    identity: Identity,
    relay: ChatRelay,
    runtime_config: RuntimeConfig,
) -> None:
    manager = identity.manager
    replied = message.reply_to_message
    if manager is not None and replied is not None:
        outcome = await relay.to_client(
            manager, incoming(message), reply_to_message_id=replied.message_id
        )
        if outcome is ReplyOutcome.SENT:
            return
        if outcome is ReplyOutcome.FAILED:
            await answer(message, texts.render("chat_reply_failed.html.j2"))
            return
    if (message.text or "").startswith("/"):
        if manager is not None:
            await answer(message, texts.render("help_manager.html.j2", manager=manager))
        else:
            await answer(
                message, texts.render("help_client.html.j2", subscribed=bool(identity.clients))
            )
        return
    client = identity.client
    if client is not None:
        async with db.sessions() as session:
            notify = (await runtime_config.current(session)).notify
        await relay.from_client(
            client,
            incoming(message),
            chat_enabled=notify.chat_enabled,
            auto_reply=notify.auto_reply,
        )
        return
    if manager is not None:
        await answer(message, texts.render("chat_manager_hint.html.j2"))
        return
    await answer(message, texts.render("not_subscribed.html.j2"), contact_keyboard(texts))


def build_router() -> Router:
    """A new router each call: an aiogram router belongs to one Dispatcher."""
    router = Router(name="chat")
    router.message.filter(F.chat.type == ChatType.PRIVATE)
    router.message.register(chat_message)
    return router
