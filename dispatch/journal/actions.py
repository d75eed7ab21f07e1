"""Manual actions on the journal: what an operator may do to one notification by hand.

Shared by the admin API and the managers' Telegram commands. Every function opens its own
transaction, changes at most one row through `storage.notifications.transition` (so the
check and the change are one conditional UPDATE, and a history row records actor and
reason), and returns an `ActionResult` value instead of raising: refusals are ordinary
outcomes that the caller turns into a 404 / 409 or a polite bot reply.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.config import NotifyMode
from storage import notifications
from storage.database import Database
from storage.models import Notification, NotificationHistory
from storage.notifications import JournalFilter
from storage.statuses import MANUAL_TRANSITIONS, Status
from storage.types import utcnow

# Statuses a notification may be sent again from: finished ones, whatever the outcome.
RESENDABLE: frozenset[Status] = frozenset(
    {
        Status.FAILED,
        Status.SENT,
        Status.DELIVERED,
        Status.SENT_MANUALLY,
        Status.SKIPPED,
        Status.NOT_SENT,
        Status.CANCELLED,
    }
)
CONFIRMABLE: frozenset[Status] = frozenset({Status.AWAITING_CONFIRMATION})

# What a resend clears: the row becomes a fresh delivery job, and a receipt for the old
# provider message must not match it any more (the old values stay in the history).
_FRESH_DELIVERY: dict[str, Any] = {
    "attempts": 0,
    "lease_until": None,
    "provider": None,
    "provider_message_id": None,
    "telegram_message_id": None,
    "cost": None,
    "sent_at": None,
    "delivered_at": None,
}

Wake = Callable[[], None]
"""Tells the delivery workers that a row became due (optional; they also poll)."""


class ActionOutcome(StrEnum):
    """How a manual action ended (not to be confused with a channel's send `Outcome`)."""

    DONE = "done"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One notification as an operator sees it: the row, the ERP's event id, its history."""

    notification: Notification
    event_id: str | None
    history: Sequence[NotificationHistory] = ()


@dataclass(frozen=True, slots=True)
class JournalPage:
    entries: Sequence[JournalEntry]
    next_before_id: int | None
    """Pass as `JournalFilter.before_id` for the next page; None at the end."""


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What a manual action did: `entry` when DONE, else `message` (and `current_status`)."""

    outcome: ActionOutcome
    notification_id: int
    message: str
    entry: JournalEntry | None = None
    current_status: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is ActionOutcome.DONE


# --------------------------------------------------------------------------- reading


async def load_entry(session: AsyncSession, notification_id: int) -> JournalEntry | None:
    """The notification with its event id and full status history, or None."""
    row = await notifications.get_notification(session, notification_id)
    if row is None:
        return None
    return await _entry_of(session, row, with_history=True)


async def journal_page(db: Database, where: JournalFilter) -> JournalPage:
    """One page of the journal, newest first, and where the next page starts."""
    # One extra row tells whether another page exists.
    probe = dataclasses.replace(where, limit=where.limit + 1)
    async with db.sessions() as session:
        rows = await notifications.list_notifications(session, probe)
        page, more = rows[: where.limit], len(rows) > where.limit
        event_ids = await notifications.event_ids_by_pk(
            session, [row.event_pk for row in page if row.event_pk is not None]
        )
    entries = [
        JournalEntry(row, event_ids.get(row.event_pk) if row.event_pk else None) for row in page
    ]
    return JournalPage(entries, page[-1].id if more and page else None)


async def _entry_of(
    session: AsyncSession, row: Notification, *, with_history: bool
) -> JournalEntry:
    event_id = None
    if row.event_pk is not None:
        event_id = (await notifications.event_ids_by_pk(session, [row.event_pk])).get(row.event_pk)
    history = await notifications.get_history(session, row.id) if with_history else []
    return JournalEntry(row, event_id, history)


# --------------------------------------------------------------------------- actions


async def set_status(
    db: Database,
    notification_id: int,
    *,
    status: Status | str,
    actor: str,
    note: str | None = None,
) -> ActionResult:
    """Mark a notification `sent_manually` or `cancelled` (from MANUAL_TRANSITIONS only).

    Raises ValueError for any other target status: that is a caller's bug, not a refusal.
    """
    target = Status(status)
    if target not in MANUAL_TRANSITIONS:
        allowed = ", ".join(sorted(MANUAL_TRANSITIONS))
        raise ValueError(f"status {target.value!r} cannot be set by hand (only {allowed})")
    default_reason = {
        Status.SENT_MANUALLY: "marked as sent manually",
        Status.CANCELLED: "cancelled by hand",
    }[target]
    extra: dict[str, Any] = {"next_attempt_at": None, "lease_until": None}
    if target is Status.SENT_MANUALLY:
        extra["sent_at"] = utcnow()
    return await _move(
        db,
        notification_id,
        to_status=target,
        from_statuses=MANUAL_TRANSITIONS[target],
        actor=actor,
        reason=note or default_reason,
        refusal=f"can be marked {target.value}",
        fields=extra,
    )


async def confirm(
    db: Database,
    notification_id: int,
    *,
    mode: NotifyMode,
    actor: str,
    note: str | None = None,
    wake: Wake | None = None,
) -> ActionResult:
    """Release a notification that awaits confirmation.

    In `live` mode it becomes `pending`, due now; in `test` mode it becomes `test` (nothing
    is sent in test mode); in `off` mode nothing can be sent, so it stays as it is (CONFLICT).
    """
    if mode == "off":
        return await _mode_refusal(db, notification_id, mode)
    if mode == "test":
        return await _move(
            db,
            notification_id,
            to_status=Status.TEST,
            from_statuses=CONFIRMABLE,
            actor=actor,
            reason=note or "confirmed; notify mode is test: nothing is sent",
            refusal="can be confirmed",
        )
    result = await _move(
        db,
        notification_id,
        to_status=Status.PENDING,
        from_statuses=CONFIRMABLE,
        actor=actor,
        reason=note or "confirmed for sending",
        refusal="can be confirmed",
        fields=_queued_now({"attempts": 0, "lease_until": None}),
    )
    if result.ok and wake is not None:
        wake()
    return result


async def cancel(
    db: Database, notification_id: int, *, actor: str, note: str | None = None
) -> ActionResult:
    """Decline a notification that awaits confirmation: it becomes `cancelled`."""
    return await _move(
        db,
        notification_id,
        to_status=Status.CANCELLED,
        from_statuses=CONFIRMABLE,
        actor=actor,
        reason=note or "cancelled instead of confirmed",
        refusal="can be cancelled this way",
        fields={"next_attempt_at": None, "lease_until": None},
    )


async def resend(
    db: Database,
    notification_id: int,
    *,
    mode: NotifyMode,
    actor: str,
    note: str | None = None,
    wake: Wake | None = None,
) -> ActionResult:
    """Queue a finished notification again: `pending`, no attempts made, due now.

    The worker chooses the channel again when it sends (the recipient may have subscribed
    to the bot since). Only in `live` mode: in `test` and `off` nothing is ever sent.
    """
    return await _due_now(
        db,
        notification_id,
        mode=mode,
        wake=wake,
        from_statuses=RESENDABLE,
        actor=actor,
        reason=note or "queued again by hand",
        refusal="can be sent again",
        fields=_FRESH_DELIVERY,
    )


SEND_NOW_REASON = "sent now by hand, before the quiet hours end"


async def send_now(
    db: Database,
    notification_id: int,
    *,
    mode: NotifyMode,
    actor: str,
    note: str | None = None,
    wake: Wake | None = None,
) -> ActionResult:
    """Release a notification held by quiet hours: `pending`, due now (`live` mode only;
    in the other modes nothing is sent, and a held row keeps waiting)."""
    return await _due_now(
        db,
        notification_id,
        mode=mode,
        wake=wake,
        from_statuses={Status.SCHEDULED},
        actor=actor,
        reason=note or SEND_NOW_REASON,
        refusal="can be sent now",
        fields={"lease_until": None},
    )


async def _due_now(
    db: Database,
    notification_id: int,
    *,
    mode: NotifyMode,
    wake: Wake | None,
    from_statuses: Collection[Status],
    actor: str,
    reason: str,
    refusal: str,
    fields: Mapping[str, Any],
) -> ActionResult:
    """`pending` and due now, the workers woken; refused outside `live` mode."""
    if mode != "live":
        return await _mode_refusal(db, notification_id, mode)
    result = await _move(
        db,
        notification_id,
        to_status=Status.PENDING,
        from_statuses=from_statuses,
        actor=actor,
        reason=reason,
        refusal=refusal,
        fields=_queued_now(fields),
    )
    if result.ok and wake is not None:
        wake()
    return result


def _queued_now(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Due now; the retry policy's maximum age restarts from now as well."""
    now = utcnow()
    return {**fields, "next_attempt_at": now, "queued_at": now}


async def _mode_refusal(db: Database, notification_id: int, mode: NotifyMode) -> ActionResult:
    """CONFLICT because of the notify mode (NOT_FOUND still wins for an unknown id)."""
    async with db.sessions() as session:
        current = await notifications.get_status(session, notification_id)
    if current is None:
        return _not_found(notification_id)
    return ActionResult(
        ActionOutcome.CONFLICT,
        notification_id,
        f"notify mode is {mode}: nothing is sent",
        current_status=current,
    )


async def _move(
    db: Database,
    notification_id: int,
    *,
    to_status: Status,
    from_statuses: Collection[Status],
    actor: str,
    reason: str,
    refusal: str,
    fields: dict[str, Any] | None = None,
) -> ActionResult:
    """One guarded transition; the refusal names the current status and the allowed ones."""
    async with db.transaction() as session:
        row = await notifications.transition(
            session,
            notification_id,
            to_status=to_status.value,
            from_statuses={status.value for status in from_statuses},
            actor=actor,
            reason=reason,
            **(fields or {}),
        )
        if row is not None:
            entry = await _entry_of(session, row, with_history=True)
            return ActionResult(
                ActionOutcome.DONE,
                notification_id,
                f"notification {notification_id} is now {to_status.value}",
                entry=entry,
                current_status=to_status.value,
            )
        current = await notifications.get_status(session, notification_id)
    if current is None:
        return _not_found(notification_id)
    allowed = sorted(status.value for status in from_statuses)
    which = (
        f"status {allowed[0]}"
        if len(allowed) == 1
        else ("one of the statuses " + ", ".join(allowed))
    )
    return ActionResult(
        ActionOutcome.CONFLICT,
        notification_id,
        f"notification {notification_id} is {current}; only a notification in {which} {refusal}",
        current_status=current,
    )


def _not_found(notification_id: int) -> ActionResult:
    return ActionResult(
        ActionOutcome.NOT_FOUND, notification_id, f"notification {notification_id} does not exist"
    )
