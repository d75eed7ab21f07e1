"""The bot for managers: journal commands and the inline buttons of the prompts.

Only a Telegram user linked to a manager record may use these; everyone else is refused
politely. The work is `dispatch`'s (`JournalActions`, `sms_tools`, `manager_prompts`); the
actor in the journal is `manager:<id>`. The journal's side effects (waking the workers,
editing the prompts) are `JournalActions`' (workflow data `journal`), not this module's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, LinkPreviewOptions, Message

from dispatch.config import SmsTestSettings
from dispatch.conversation.bot_texts import BotTexts
from dispatch.conversation.subscriptions import Identity
from dispatch.delivery.channels.outcome import OutcomeKind
from dispatch.delivery.channels.sms.base import ProviderError, SmsProvider
from dispatch.erp_actions.buttons import PREFIX as ERP_BUTTON_PREFIX
from dispatch.journal import actions
from dispatch.journal.actions import ActionOutcome, ActionResult
from dispatch.journal.manager_prompts import MAX_ID, ManagerPrompts, PromptCallback
from dispatch.journal.service import JournalActions, TelegramActor
from dispatch.ops.balance import balance_report, provider_in_use
from dispatch.ops.sms_tools import TestSmsRefused, send_test_sms
from dispatch.phones import InvalidPhone, normalise_phone
from dispatch.runtime_config import EffectiveConfig, RuntimeConfig
from handlers.desk.links import DeskLinks
from storage import directory, events, notifications
from storage.database import Database
from storage.statuses import ALL_STATUSES, Status

logger = logging.getLogger(__name__)

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
JOURNAL_LIMIT = 10
MANAGER_COMMANDS = ("journal", "status", "resend", "sent", "balance", "testsms", "desk")
_ID = re.compile(r"[#№]?\s*([0-9]{1,19})")


async def answer(message: Message, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    await message.answer(
        text, parse_mode="HTML", link_preview_options=NO_PREVIEW, reply_markup=markup
    )


def is_manager(_event: object, identity: Identity) -> bool:
    """Filter: the sender is linked to a manager record."""
    return identity.is_manager


def _notification_id(command: CommandObject) -> int | None:
    match = _ID.fullmatch((command.args or "").strip())
    if match is None or not 0 < int(match.group(1)) <= MAX_ID:
        return None
    return int(match.group(1))


async def _effective(db: Database, runtime_config: RuntimeConfig) -> EffectiveConfig:
    async with db.sessions() as session:
        return await runtime_config.current(session)


async def _mine(db: Database, identity: Identity, notification_id: int) -> bool:
    """Whether the notification exists and this manager may see and act on it."""
    async with db.sessions() as session:
        entry = await actions.load_entry(session, notification_id)
    return entry is not None and identity.may_act_on(entry.notification.manager_id)


# --------------------------------------------------------------------------- commands


async def manager_help(message: Message, texts: BotTexts, identity: Identity) -> None:
    await answer(message, texts.render("help_manager.html.j2", manager=identity.manager))


async def journal(
    message: Message, command: CommandObject, db: Database, texts: BotTexts, identity: Identity
) -> None:
    """`/journal [status]`: the latest notifications of the manager's clients (all: admin)."""
    wanted = (command.args or "").strip().lower() or None
    if wanted is not None and wanted not in ALL_STATUSES:
        await answer(
            message,
            texts.render("journal_bad_status.html.j2", given=wanted, statuses=ALL_STATUSES),
        )
        return
    async with db.sessions() as session:
        rows = await notifications.recent_notifications(
            session,
            status=wanted,
            manager_ids=None if identity.is_admin else identity.manager_ids,
            limit=JOURNAL_LIMIT,
        )
        names = await directory.client_names(session, [row.client_id or "" for row in rows])
        documents = await events.documents_by_pk(
            session, [row.event_pk for row in rows if row.event_pk is not None]
        )
    await answer(
        message,
        texts.render(
            "journal.html.j2", rows=rows, names=names, documents=documents, status=wanted
        ),
    )


async def status(
    message: Message,
    command: CommandObject,
    db: Database,
    texts: BotTexts,
    identity: Identity,
    prompts: ManagerPrompts,
) -> None:
    """`/status <id>`: one notification with its history; «Отправить сейчас» under one held
    by quiet hours."""
    notification_id = _notification_id(command)
    if notification_id is None:
        await answer(message, texts.render("usage.html.j2", command="status"))
        return
    async with db.sessions() as session:
        entry = await actions.load_entry(session, notification_id)
        if entry is None or not identity.may_act_on(entry.notification.manager_id):
            await answer(message, texts.render("not_found.html.j2", id=notification_id))
            return
        names = await directory.client_names(session, [entry.notification.client_id or ""])
        event_pk = entry.notification.event_pk
        documents = await events.documents_by_pk(session, [] if event_pk is None else [event_pk])
    held = entry.notification.status == Status.SCHEDULED
    await answer(
        message,
        texts.render(
            "status.html.j2",
            entry=entry,
            client_name=names.get(entry.notification.client_id or ""),
            document=documents.get(event_pk) if event_pk is not None else None,
        ),
        prompts.send_now_keyboard(notification_id) if held else None,
    )


async def _after_action(
    message: Message,
    texts: BotTexts,
    result: ActionResult,
    *,
    done: str,
    mode_refusal: bool = False,
) -> None:
    await answer(
        message,
        texts.render(
            "action_result.html.j2",
            id=result.notification_id,
            ok=result.ok,
            done=done,
            current=result.current_status,
            mode_refusal=mode_refusal and not result.ok,
            not_found=result.outcome is ActionOutcome.NOT_FOUND,
        ),
    )


async def resend(
    message: Message,
    command: CommandObject,
    db: Database,
    texts: BotTexts,
    identity: Identity,
    runtime_config: RuntimeConfig,
    journal: JournalActions,
) -> None:
    """`/resend <id>`: queue a finished notification again (live mode only)."""
    notification_id = _notification_id(command)
    if notification_id is None:
        await answer(message, texts.render("usage.html.j2", command="resend"))
        return
    if not await _mine(db, identity, notification_id):
        await answer(message, texts.render("not_found.html.j2", id=notification_id))
        return
    mode = (await _effective(db, runtime_config)).notify.mode
    result = await journal.resend(
        notification_id, actor=TelegramActor(identity), note="/resend in Telegram", mode=mode
    )
    await _after_action(message, texts, result, done="resent", mode_refusal=mode != "live")


async def sent_manually(
    message: Message,
    command: CommandObject,
    db: Database,
    texts: BotTexts,
    identity: Identity,
    journal: JournalActions,
) -> None:
    """`/sent <id>`: mark a notification as sent by hand."""
    notification_id = _notification_id(command)
    if notification_id is None:
        await answer(message, texts.render("usage.html.j2", command="sent"))
        return
    if not await _mine(db, identity, notification_id):
        await answer(message, texts.render("not_found.html.j2", id=notification_id))
        return
    result = await journal.mark_sent_manually(
        notification_id, actor=TelegramActor(identity), note="/sent in Telegram"
    )
    await _after_action(message, texts, result, done="sent_manually")


def _provider(providers: Mapping[str, SmsProvider], name: str | None) -> SmsProvider | None:
    if not providers:
        return None
    return providers.get(name or next(iter(providers)))


async def balance(
    message: Message,
    db: Database,
    texts: BotTexts,
    runtime_config: RuntimeConfig,
    sms_providers: Mapping[str, SmsProvider],
) -> None:
    """`/balance`: the balance of the SMS service notifications use."""
    notify = (await _effective(db, runtime_config)).notify
    provider = provider_in_use(sms_providers, notify)
    if provider is None:
        await answer(message, texts.render("no_sms_service.html.j2"))
        return
    try:
        # The same report as `vestnik balance` and GET /api/v1/balance.
        report = await balance_report(provider, notify, db=db)
    except ProviderError as exc:
        await answer(
            message, texts.render("balance.html.j2", service=provider.name, error=str(exc))
        )
        return
    await answer(message, texts.render("balance.html.j2", **report.text_context()))


async def test_sms(
    message: Message,
    command: CommandObject,
    db: Database,
    texts: BotTexts,
    identity: Identity,
    runtime_config: RuntimeConfig,
    sms_providers: Mapping[str, SmsProvider],
    test_sms_limits: SmsTestSettings,
) -> None:
    """`/testsms <phone>`: send the test SMS now; it is journaled as `test_sms`.

    Admins only (it costs money and goes where the sender says); the allowed countries
    and the daily cap are `send_test_sms`'s, shared with the admin API.
    """
    if not identity.is_admin:
        logger.warning("test SMS refused to %s: not an admin", identity.actor)
        await answer(message, texts.render("test_sms_refused.html.j2", reason="admins_only"))
        return
    raw = (command.args or "").strip()
    try:
        phone = normalise_phone(raw)
    except InvalidPhone:
        await answer(message, texts.render("usage.html.j2", command="testsms"))
        return
    notify = (await _effective(db, runtime_config)).notify
    provider = _provider(sms_providers, notify.sms_service)
    if provider is None:
        await answer(message, texts.render("no_sms_service.html.j2"))
        return
    try:
        result = await send_test_sms(
            db, provider, phone, actor=identity.actor, limits=test_sms_limits
        )
    except TestSmsRefused as refused:
        logger.warning("test SMS refused to %s: %s", identity.actor, refused.reason.value)
        await answer(
            message,
            texts.render(
                "test_sms_refused.html.j2",
                reason=refused.reason.value,
                phone=phone,
                countries=refused.countries,
                limit=refused.limit,
                resets_at=refused.resets_at,
            ),
        )
        return
    await answer(
        message,
        texts.render(
            "test_sms.html.j2",
            phone=phone,
            service=provider.name,
            sent=result.outcome.kind is OutcomeKind.SENT,
            reason=result.outcome.reason,
            id=result.notification_id,
            segments=result.segments,
        ),
    )


async def desk(
    message: Message, db: Database, texts: BotTexts, identity: Identity, desk_links: DeskLinks
) -> None:
    """`/desk`: a one-time link that signs this manager in to the web desk."""
    manager = identity.manager
    assert manager is not None  # the is_manager filter
    link = await desk_links.issue(db, manager.id)
    logger.info("desk sign-in link issued to manager %s", manager.id)
    await answer(message, texts.render("desk_link.html.j2", url=link.url, minutes=link.minutes))


async def managers_only(message: Message, texts: BotTexts) -> None:
    """A manager command from someone who is not a linked manager."""
    assert message.from_user is not None
    logger.info("telegram user %s tried a manager command: refused", message.from_user.id)
    await answer(message, texts.render("managers_only.html.j2"))


# --------------------------------------------------------------------------- buttons


async def prompt_pressed(
    query: CallbackQuery,
    callback_data: PromptCallback,
    db: Database,
    identity: Identity,
    runtime_config: RuntimeConfig,
    prompts: ManagerPrompts,
    journal: JournalActions,
) -> None:
    mode = (await _effective(db, runtime_config)).notify.mode
    pressed = None
    if query.message is not None:
        pressed = (query.message.chat.id, query.message.message_id)
    result = await prompts.press(
        identity, callback_data, mode=mode, journal=journal, pressed=pressed
    )
    await query.answer(result.answer, show_alert=result.outcome.value == "refused")


async def stale_button(query: CallbackQuery, texts: BotTexts) -> None:
    """Callback data we did not make (malformed, forged, or from an old version)."""
    logger.warning(
        "telegram user %s sent unknown callback data %r: ignored",
        query.from_user.id,
        (query.data or "")[:64],
    )
    await query.answer(texts.label("answer_unknown_button"), show_alert=True)


def build_router() -> Router:
    """A new router each call: an aiogram router belongs to one Dispatcher."""
    router = Router(name="manager")
    router.message.filter(F.chat.type == ChatType.PRIVATE)
    router.message.register(manager_help, Command("help"), is_manager)
    router.message.register(journal, Command("journal"), is_manager)
    router.message.register(status, Command("status"), is_manager)
    router.message.register(resend, Command("resend"), is_manager)
    router.message.register(sent_manually, Command("sent"), is_manager)
    router.message.register(balance, Command("balance"), is_manager)
    router.message.register(test_sms, Command("testsms"), is_manager)
    router.message.register(desk, Command("desk"), is_manager)
    router.message.register(managers_only, Command(*MANAGER_COMMANDS))
    router.callback_query.register(prompt_pressed, PromptCallback.filter())
    # The ERP's buttons under a client's message are the client router's.
    router.callback_query.register(stale_button, ~F.data.startswith(ERP_BUTTON_PREFIX))
    return router
