"""One-tap decisions for managers: notifications that wait for a person reach the
responsible manager's Telegram with inline buttons.

- `awaiting_confirmation` → «Отправить» / «Отменить»; `not_sent` (the client turned the type
  off, the manager tracks it) → «Отправлено вручную».
- The prompt goes to the responsible manager's usable chats, or to the admins' when that
  manager has none; each message is recorded as a `ManagerPrompt`. Sending is best-effort
  (the notification waits in the journal either way) and every failure is logged.
- A press acts once: the callback data names the action and the notification id only
  (aiogram `CallbackData`, so a malformed value never matches); the presser must be a
  linked manager who is responsible for the notification or an admin, and the notification
  must still be in the state the button was made for — `dispatch.journal.actions` checks and
  changes in one conditional UPDATE, so a second press, or a press racing an admin, does
  nothing. Then every prompt about that notification is edited to show the result, without
  buttons (`JournalActions` has it done through `StatusChanges.settle`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions
from markupsafe import Markup
from pydantic import Field

from dispatch.config import NotifyMode
from dispatch.conversation.bot_texts import BotTexts
from dispatch.conversation.subscriptions import Identity
from dispatch.intake.ingest import NotificationSummary
from dispatch.journal.actions import ActionOutcome, ActionResult
from dispatch.journal.service import JournalActions, TelegramActor
from storage import directory, links, notifications
from storage.database import Database
from storage.models import Notification
from storage.statuses import Status
from storage.types import utcnow

logger = logging.getLogger(__name__)

MAX_ID = 2**63 - 1
PROMPTED_STATUSES = frozenset({Status.AWAITING_CONFIRMATION.value, Status.NOT_SENT.value})
SWEEP_GRACE = timedelta(minutes=2)
"""The sweep leaves younger notifications alone: their own prompt may be on its way."""
SWEEP_BATCH = 200
RETRY_AFTER_LIMIT = 30.0
"""A 429 longer than this gives the prompt up (the journal still has the notification)."""
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


class PromptAction(StrEnum):
    SEND = "send"
    CANCEL = "cancel"
    MANUAL = "manual"
    NOW = "now"
    """«Отправить сейчас» under `/status` of a notification held by quiet hours."""


# The state each button is made for.
EXPECTED_STATUS = {
    PromptAction.SEND: Status.AWAITING_CONFIRMATION.value,
    PromptAction.CANCEL: Status.AWAITING_CONFIRMATION.value,
    PromptAction.MANUAL: Status.NOT_SENT.value,
    PromptAction.NOW: Status.SCHEDULED.value,
}


class PromptCallback(CallbackData, prefix="nt"):
    """`nt:<action>:<notification id>`, well inside Telegram's 64 bytes."""

    action: PromptAction
    id: Annotated[int, Field(gt=0, le=MAX_ID)]


class PressOutcome(StrEnum):
    DONE = "done"
    CONFLICT = "conflict"
    """Not in the state the button was made for (acted on already, or changed meanwhile)."""
    REFUSED = "refused"
    """Not this person's to decide, or no such notification: nothing happens."""


@dataclass(frozen=True, slots=True)
class PressResult:
    outcome: PressOutcome
    answer: str
    """The short text of the callback answer."""


class ManagerPrompts:
    """Sends the prompts (subscribed to the ingestor) and carries out the button presses."""

    def __init__(self, *, db: Database, bot: Bot, texts: BotTexts) -> None:
        self._db = db
        self._bot = bot
        self._texts = texts
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ sending

    def on_ingested(self, summaries: Sequence[NotificationSummary]) -> None:
        """Ingest observer (runs after the event's commit): prompt in the background."""
        ids = [item.id for item in summaries if item.status in PROMPTED_STATUSES]
        if ids:
            self.spawn(self.prompt(ids))

    def on_status_changed(self, notification_ids: Sequence[int]) -> None:
        """Status-change listener (manual actions in the admin API, expiry): edit the
        prompts about those notifications in the background."""
        self.spawn(self._settle_all(notification_ids))

    async def _settle_all(self, notification_ids: Sequence[int]) -> None:
        for notification_id in notification_ids:
            try:
                await self.settle(notification_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception(
                    "editing the prompts about notification %s failed", notification_id
                )

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, grace_seconds: float = 5.0) -> None:
        """Let prompts in flight finish (up to `grace_seconds`), then cancel the rest."""
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(set(self._tasks), timeout=grace_seconds)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def sweep(self, now: datetime, *, window: timedelta) -> int:
        """Prompt about notifications that waited more than `SWEEP_GRACE` without any
        prompt: the process that stored them stopped before prompting (prompts go out after
        the event's commit), or no manager or admin was in Telegram then and one is now.
        Looks back over `window`; returns how many it tried."""
        async with self._db.sessions() as session:
            ids = await notifications.unprompted(
                session,
                statuses=PROMPTED_STATUSES,
                created_after=now - window,
                created_before=now - SWEEP_GRACE,
                limit=SWEEP_BATCH,
            )
        await self.prompt(ids, quiet=True)
        return len(ids)

    async def prompt(self, notification_ids: Sequence[int], *, quiet: bool = False) -> None:
        """`quiet`: do not log each notification nobody in Telegram can be prompted about
        (the sweep meets the same ones at every run)."""
        for notification_id in notification_ids:
            try:
                await self._prompt_one(notification_id, quiet=quiet)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception(
                    "prompting managers about notification %s failed", notification_id
                )

    async def _prompt_one(self, notification_id: int, *, quiet: bool = False) -> None:
        async with self._db.sessions() as session:
            row = await session.get(Notification, notification_id)
            if row is None or row.status not in PROMPTED_STATUSES:
                return
            chats = await links.usable_manager_chats(
                session, [row.manager_id] if row.manager_id else []
            )
            if not chats:
                chats = await links.usable_manager_chats(
                    session, await directory.admin_ids(session)
                )
            names = await directory.client_names(session, [row.client_id or ""])
        if not chats:
            if quiet:
                return
            logger.info(
                "notification %s is %s, but no manager or admin has a usable Telegram chat",
                notification_id,
                row.status,
            )
            return
        text = self.prompt_text(row, names.get(row.client_id or ""), result=None)
        markup = self.keyboard(row)
        for chat_id in chats:
            message_id = await self._send(chat_id, text, markup)
            if message_id is None:
                continue
            async with self._db.transaction() as session:
                await notifications.add_prompt(
                    session, notification_id=row.id, chat_id=chat_id, message_id=message_id
                )
            logger.info("notification %s: prompt sent to chat %s", row.id, chat_id)

    async def _send(self, chat_id: int, text: str, markup: InlineKeyboardMarkup) -> int | None:
        for _ in range(3):
            try:
                message = await self._bot.send_message(
                    chat_id,
                    text,
                    parse_mode="HTML",
                    reply_markup=markup,
                    link_preview_options=_NO_PREVIEW,
                )
            except TelegramRetryAfter as exc:
                if exc.retry_after > RETRY_AFTER_LIMIT:
                    logger.warning("prompt to chat %s dropped: %s", chat_id, exc.message)
                    return None
                await asyncio.sleep(exc.retry_after)
                continue
            except TelegramForbiddenError as exc:
                async with self._db.transaction() as session:
                    await directory.set_chat_flags(session, chat_id, blocked=True)
                logger.info("prompt to chat %s: %s; chat marked blocked", chat_id, exc.message)
                return None
            except (TelegramAPIError, OSError, TimeoutError) as exc:
                logger.warning("prompt to chat %s failed: %s", chat_id, exc)
                return None
            return message.message_id
        logger.warning("prompt to chat %s dropped after repeated rate limits", chat_id)
        return None

    def keyboard(self, row: Notification) -> InlineKeyboardMarkup:
        def button(label: str, action: PromptAction) -> InlineKeyboardButton:
            data = PromptCallback(action=action, id=row.id).pack()
            return InlineKeyboardButton(text=self._texts.label(label), callback_data=data)

        if row.status == Status.NOT_SENT:
            rows = [[button("button_sent_manually", PromptAction.MANUAL)]]
        else:
            rows = [
                [
                    button("button_send", PromptAction.SEND),
                    button("button_cancel", PromptAction.CANCEL),
                ]
            ]
        return InlineKeyboardMarkup(inline_keyboard=rows)

    def send_now_keyboard(self, notification_id: int) -> InlineKeyboardMarkup:
        """The button under `/status` of a `scheduled` notification."""
        data = PromptCallback(action=PromptAction.NOW, id=notification_id).pack()
        label = self._texts.label("button_send_now")
        button = InlineKeyboardButton(text=label, callback_data=data)
        return InlineKeyboardMarkup(inline_keyboard=[[button]])

    def prompt_text(self, row: Notification, client_name: str | None, result: str | None) -> str:
        return self._texts.render(
            "prompt.html.j2",
            notification=row,
            client_name=client_name,
            result=result,
        )

    # ------------------------------------------------------------------ pressing

    async def press(
        self,
        identity: Identity,
        data: PromptCallback,
        *,
        mode: NotifyMode,
        journal: JournalActions,
        pressed: tuple[int, int] | None,
    ) -> PressResult:
        """Carry out one button press; `pressed` is the (chat, message) of the button.
        `journal` edits the prompts (this one among them) once the action is done."""
        texts = self._texts
        if not identity.is_manager:
            return PressResult(PressOutcome.REFUSED, texts.label("answer_not_manager"))
        async with self._db.sessions() as session:
            row = await session.get(Notification, data.id)
        if row is None or not identity.may_act_on(row.manager_id):
            logger.warning(
                "telegram user %s pressed %s on notification %s: refused (%s)",
                identity.user_id,
                data.action.value,
                data.id,
                "unknown" if row is None else "not theirs",
            )
            return PressResult(PressOutcome.REFUSED, texts.label("answer_not_yours"))
        if row.status != EXPECTED_STATUS[data.action]:
            await self.settle(row.id, pressed=pressed)
            return PressResult(
                PressOutcome.CONFLICT,
                texts.label("answer_already").format(status=texts.status(row.status)),
            )
        result = await self._act(journal, TelegramActor(identity, pressed), data, mode=mode)
        if result.ok:
            return PressResult(PressOutcome.DONE, texts.label(f"answer_done_{data.action.value}"))
        if result.outcome is ActionOutcome.NOT_FOUND:
            return PressResult(PressOutcome.REFUSED, texts.label("answer_not_yours"))
        if mode != "live" and data.action in (PromptAction.SEND, PromptAction.NOW):
            return PressResult(PressOutcome.CONFLICT, texts.label("answer_mode_off"))
        return PressResult(
            PressOutcome.CONFLICT,
            texts.label("answer_already").format(status=texts.status(result.current_status)),
        )

    async def _act(
        self,
        journal: JournalActions,
        actor: TelegramActor,
        data: PromptCallback,
        *,
        mode: NotifyMode,
    ) -> ActionResult:
        if data.action is PromptAction.SEND:
            return await journal.confirm(data.id, actor=actor, mode=mode)
        if data.action is PromptAction.CANCEL:
            return await journal.cancel(data.id, actor=actor)
        if data.action is PromptAction.NOW:
            return await journal.send_now(data.id, actor=actor, mode=mode)
        return await journal.mark_sent_manually(data.id, actor=actor, note="from the Telegram bot")

    async def settle(
        self,
        notification_id: int,
        *,
        pressed: tuple[int, int] | None = None,
        by: Identity | None = None,
    ) -> None:
        """Edit every prompt about the notification to show its current status, no buttons."""
        async with self._db.transaction() as session:
            row = await session.get(Notification, notification_id)
            if row is None:
                return
            targets = dict.fromkeys(await notifications.open_prompts(session, notification_id))
            if pressed is not None:
                targets.setdefault(pressed)
            if row.status not in PROMPTED_STATUSES:
                await notifications.close_prompts(session, notification_id, utcnow())
            names = await directory.client_names(session, [row.client_id or ""])
        if row.status in PROMPTED_STATUSES:
            return  # still waiting: the buttons stay
        # Markup: rendered by an autoescaping template already, not to be escaped twice.
        result = Markup(
            self._texts.render(
                "prompt_result.html.j2",
                status=row.status,
                manager=by.manager if by is not None else None,
            )
        )
        text = self.prompt_text(row, names.get(row.client_id or ""), result=result)
        for chat_id, message_id in targets:
            try:
                await self._bot.edit_message_text(
                    text=text,
                    chat_id=chat_id,
                    message_id=message_id,
                    parse_mode="HTML",
                    reply_markup=None,
                    link_preview_options=_NO_PREVIEW,
                )
            except TelegramBadRequest as exc:
                # "message is not modified" (edited already) or too old to edit.
                logger.debug("prompt %s/%s not edited: %s", chat_id, message_id, exc.message)
            except (TelegramAPIError, OSError, TimeoutError) as exc:
                logger.warning("prompt %s/%s not edited: %s", chat_id, message_id, exc)
