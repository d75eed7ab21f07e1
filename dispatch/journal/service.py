"""`JournalActions`: the journal's manual actions together with what must follow them.

`actions` holds the guarded transitions; this service runs one and then does its side
effects, so that no front end (admin API, bot) wires them itself:

- a notification made due now (confirmed in `live` mode, queued again, sent before its
  quiet hours end) wakes the delivery workers;
- the managers' prompts about it are edited: in the background after an action by an
  operator of the admin API (`StatusChanges`), and before the method returns for a manager
  acting in Telegram (`TelegramActor`): the prompts then name that manager, the bot's reply
  follows the edit, and a pressed button's message shows the outcome even when the action
  was refused.

Built once per app (`bot/app.py`), handed to views by an AppKey and to the bot's handlers
as the workflow data `journal`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol

from dispatch.config import NotifyMode
from dispatch.conversation.subscriptions import Identity
from dispatch.journal import actions
from dispatch.journal.actions import ActionResult, Wake
from dispatch.journal.status_changes import StatusChanges
from dispatch.runtime_config import RuntimeConfig
from storage.database import Database
from storage.statuses import Status


@dataclass(frozen=True, slots=True)
class TelegramActor:
    """A manager acting from Telegram, and the (chat, message) of the button they pressed."""

    identity: Identity
    pressed: tuple[int, int] | None = None

    @property
    def actor(self) -> str:
        return self.identity.actor


Actor = str | TelegramActor
"""Who acts: the journal's actor string (`admin`), or a manager in Telegram."""


class DueNowAction(Protocol):
    """`actions.resend` or `actions.send_now`: a row made due now in live mode."""

    def __call__(
        self,
        db: Database,
        notification_id: int,
        *,
        mode: NotifyMode,
        actor: str,
        note: str | None = None,
        wake: Wake | None = None,
    ) -> Awaitable[ActionResult]: ...


class JournalActions:
    """Confirm, cancel, resend, send now, mark sent by hand, with their side effects."""

    def __init__(
        self,
        *,
        db: Database,
        config: RuntimeConfig,
        status_changes: StatusChanges,
        wake: Wake | None = None,
    ) -> None:
        self._db = db
        self._config = config
        self._changes = status_changes
        self._wake = wake

    async def mode(self) -> NotifyMode:
        """The notify mode in force now (the settings may change at run time)."""
        async with self._db.sessions() as session:
            mode: NotifyMode = (await self._config.current(session)).notify.mode
        return mode

    async def confirm(
        self,
        notification_id: int,
        *,
        actor: Actor,
        note: str | None = None,
        mode: NotifyMode | None = None,
    ) -> ActionResult:
        """Release a notification awaiting confirmation (`actions.confirm`); `mode`: the one
        the caller read already (default: read now)."""
        result = await actions.confirm(
            self._db,
            notification_id,
            mode=mode or await self.mode(),
            actor=_name(actor),
            note=note,
            wake=self._wake,
        )
        return await self._after(result, actor)

    async def cancel(
        self, notification_id: int, *, actor: Actor, note: str | None = None
    ) -> ActionResult:
        """Decline a notification awaiting confirmation (`actions.cancel`)."""
        result = await actions.cancel(self._db, notification_id, actor=_name(actor), note=note)
        return await self._after(result, actor)

    async def resend(
        self,
        notification_id: int,
        *,
        actor: Actor,
        note: str | None = None,
        mode: NotifyMode | None = None,
    ) -> ActionResult:
        """Queue a finished notification again (`actions.resend`; `live` mode only)."""
        return await self._due_now(actions.resend, notification_id, actor, note, mode)

    async def send_now(
        self,
        notification_id: int,
        *,
        actor: Actor,
        note: str | None = None,
        mode: NotifyMode | None = None,
    ) -> ActionResult:
        """Send a notification held by quiet hours at once (`actions.send_now`)."""
        return await self._due_now(actions.send_now, notification_id, actor, note, mode)

    async def _due_now(
        self,
        action: DueNowAction,
        notification_id: int,
        actor: Actor,
        note: str | None,
        mode: NotifyMode | None,
    ) -> ActionResult:
        result = await action(
            self._db,
            notification_id,
            mode=mode or await self.mode(),
            actor=_name(actor),
            note=note,
            wake=self._wake,
        )
        return await self._after(result, actor)

    async def set_status(
        self,
        notification_id: int,
        *,
        status: Status | str,
        actor: Actor,
        note: str | None = None,
    ) -> ActionResult:
        """Mark `sent_manually` or `cancelled` (`actions.set_status`; ValueError otherwise)."""
        result = await actions.set_status(
            self._db, notification_id, status=status, actor=_name(actor), note=note
        )
        return await self._after(result, actor)

    async def mark_sent_manually(
        self, notification_id: int, *, actor: Actor, note: str | None = None
    ) -> ActionResult:
        return await self.set_status(
            notification_id, status=Status.SENT_MANUALLY, actor=actor, note=note
        )

    async def _after(self, result: ActionResult, actor: Actor) -> ActionResult:
        if isinstance(actor, TelegramActor):
            if result.ok or actor.pressed is not None:
                await self._changes.settle(
                    result.notification_id, pressed=actor.pressed, by=actor.identity
                )
        elif result.ok:
            self._changes([result.notification_id])
        return result


def _name(actor: Actor) -> str:
    return actor.actor if isinstance(actor, TelegramActor) else actor
