"""The bot for everybody: subscribe (`/start`, a shared contact, a deep link), `/stop`,
`/help`, and Telegram telling us the user blocked or unblocked the bot."""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import (
    IS_MEMBER,
    IS_NOT_MEMBER,
    ChatMemberUpdatedFilter,
    Command,
    CommandObject,
    CommandStart,
)
from aiogram.types import (
    CallbackQuery,
    ChatMemberUpdated,
    KeyboardButton,
    LinkPreviewOptions,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from dispatch.conversation import subscriptions
from dispatch.conversation.bot_texts import BotTexts
from dispatch.conversation.subscriptions import ChatState, ContactOutcome, Identity
from dispatch.erp_actions.buttons import PREFIX as ERP_BUTTON_PREFIX
from dispatch.erp_actions.buttons import ErpButtons, PressOutcome
from storage.database import Database
from storage.links import TokenState
from storage.types import utcnow

logger = logging.getLogger(__name__)

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def contact_keyboard(texts: BotTexts) -> ReplyKeyboardMarkup:
    """One button that shares the user's own phone number."""
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=texts.label("button_share_phone"), request_contact=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


async def answer(
    message: Message,
    text: str,
    reply_markup: ReplyKeyboardMarkup | ReplyKeyboardRemove | None = None,
) -> None:
    await message.answer(
        text, parse_mode="HTML", reply_markup=reply_markup, link_preview_options=NO_PREVIEW
    )


async def start_with_token(
    message: Message, command: CommandObject, db: Database, texts: BotTexts
) -> None:
    """`/start <token>`: the deep link from the admin API links the chat at once."""
    assert message.from_user is not None
    payload = (command.args or "").strip()
    result = await subscriptions.link_by_token(
        db, payload, chat_id=message.chat.id, user_id=message.from_user.id
    )
    if result.state is TokenState.CLAIMED:
        await answer(
            message,
            texts.render("linked.html.j2", linked=result.linked),
            ReplyKeyboardRemove(),
        )
        return
    await answer(
        message,
        texts.render("deep_link_refused.html.j2", reason=result.state.value),
        contact_keyboard(texts),
    )


async def start(message: Message, db: Database, texts: BotTexts, identity: Identity) -> None:
    """`/start`: a greeting with the share-phone button, or resume a stopped chat."""
    state = await subscriptions.resume(db, message.chat.id)
    if state is ChatState.NOT_LINKED:
        await answer(message, texts.render("welcome.html.j2"), contact_keyboard(texts))
        return
    await answer(
        message,
        texts.render(
            "start_linked.html.j2",
            resumed=state is ChatState.RESUMED,
            clients=identity.clients,
            is_manager=identity.is_manager,
        ),
        ReplyKeyboardRemove(),
    )


async def shared_contact(message: Message, db: Database, texts: BotTexts) -> None:
    """A shared contact links the chat, when it is the sender's own."""
    assert message.contact is not None and message.from_user is not None
    contact = message.contact
    name = " ".join(part for part in (contact.first_name, contact.last_name) if part) or None
    result = await subscriptions.link_by_contact(
        db,
        chat_id=message.chat.id,
        from_user_id=message.from_user.id,
        contact_user_id=contact.user_id,
        phone=contact.phone_number,
        name=name,
    )
    if result.outcome is ContactOutcome.LINKED:
        await answer(
            message, texts.render("linked.html.j2", linked=result.linked), ReplyKeyboardRemove()
        )
    elif result.outcome is ContactOutcome.UNMATCHED:
        await answer(
            message,
            texts.render("contact_unmatched.html.j2", phone=result.phone),
            ReplyKeyboardRemove(),
        )
    elif result.outcome is ContactOutcome.NOT_OWN:
        await answer(message, texts.render("contact_not_own.html.j2"), contact_keyboard(texts))
    else:
        await answer(message, texts.render("contact_invalid.html.j2"), contact_keyboard(texts))


async def stop(message: Message, db: Database, texts: BotTexts) -> None:
    """`/stop`: no more Telegram notifications here (the reserve route applies)."""
    if await subscriptions.stop(db, message.chat.id):
        await answer(message, texts.render("stopped.html.j2"), ReplyKeyboardRemove())
    else:
        await answer(message, texts.render("not_subscribed.html.j2"), contact_keyboard(texts))


async def client_help(message: Message, texts: BotTexts, identity: Identity) -> None:
    await answer(message, texts.render("help_client.html.j2", subscribed=bool(identity.clients)))


async def bot_blocked(event: ChatMemberUpdated, db: Database) -> None:
    await subscriptions.set_blocked(db, event.chat.id, blocked=True)


async def bot_unblocked(event: ChatMemberUpdated, db: Database) -> None:
    await subscriptions.set_blocked(db, event.chat.id, blocked=False)


async def erp_button_pressed(
    query: CallbackQuery, db: Database, texts: BotTexts, erp_buttons: ErpButtons | None
) -> None:
    """A client pressed one of the ERP's buttons: stored for the outbox, then answered."""
    outcome = PressOutcome.INVALID
    if erp_buttons is not None:
        chat_id = query.message.chat.id if query.message is not None else None
        outcome = await erp_buttons.press(
            db, query.data or "", chat_id=chat_id, user_id=query.from_user.id, now=utcnow()
        )
    if outcome is PressOutcome.INVALID:
        logger.warning(
            "telegram user %s pressed an ERP button that is not theirs or not valid: %r",
            query.from_user.id,
            (query.data or "")[:64],
        )
        await query.answer(texts.label("answer_unknown_button"), show_alert=True)
        return
    name = "answer_erp_accepted" if outcome is PressOutcome.ACCEPTED else "answer_erp_again"
    await query.answer(texts.label(name))


def build_router() -> Router:
    """A new router each call: an aiogram router belongs to one Dispatcher."""
    router = Router(name="client")
    router.message.filter(F.chat.type == ChatType.PRIVATE)
    router.message.register(start_with_token, CommandStart(deep_link=True))
    router.message.register(start, CommandStart())
    router.message.register(stop, Command("stop"))
    router.message.register(client_help, Command("help"))
    router.message.register(shared_contact, F.contact)
    router.callback_query.register(erp_button_pressed, F.data.startswith(ERP_BUTTON_PREFIX))
    router.my_chat_member.register(
        bot_blocked, ChatMemberUpdatedFilter(member_status_changed=IS_MEMBER >> IS_NOT_MEMBER)
    )
    router.my_chat_member.register(
        bot_unblocked, ChatMemberUpdatedFilter(member_status_changed=IS_NOT_MEMBER >> IS_MEMBER)
    )
    return router
