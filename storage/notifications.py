"""The notification journal: insert, read, filter, and conditional status changes; and
the inline-button prompts sent to managers about notifications, with their answers."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Table, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Event, ManagerPrompt, Notification, NotificationHistory
from storage.types import utcnow
from storage.upsert import insert_for

_notifications = cast(Table, Notification.__table__)
# Built once: SQLAlchemy then finds their compiled form by a constant cache key.
_INSERT_RETURNING_IDS = insert(_notifications).returning(
    _notifications.c.id, sort_by_parameter_order=True
)
_INSERT_HISTORY = insert(cast(Table, NotificationHistory.__table__))


@dataclass(frozen=True, slots=True)
class JournalFilter:
    status: str | None = None
    event_type: str | None = None
    client_id: str | None = None
    since: datetime | None = None
    before_id: int | None = None
    """Cursor: only rows with a smaller id (the journal is newest first)."""
    limit: int = 50
    until: datetime | None = None
    """Created before this time."""
    manager_id: str | None = None
    """Only the notifications whose responsible manager this is (a manager's own view)."""
    document_number: str | None = None
    """Only the notifications about events whose `document.number` is this."""
    ids: Collection[int] | None = None
    """Only these notifications (the desk's live page re-reads the ones that changed)."""


async def insert_notifications(
    session: AsyncSession, rows: Sequence[Mapping[str, Any]], *, actor: str
) -> list[int]:
    """Insert notifications with their first history rows; returns the ids in order."""
    if not rows:
        return []
    now = utcnow()
    values = [{**row, "created_at": now, "updated_at": now} for row in rows]
    result = await session.execute(_INSERT_RETURNING_IDS, values)
    ids = [row[0] for row in result]
    await session.execute(
        _INSERT_HISTORY,
        [
            {
                "notification_id": notification_id,
                "at": now,
                "from_status": None,
                "to_status": row["status"],
                "actor": actor,
                "reason": row.get("reason"),
                "channel": row.get("channel"),
            }
            for notification_id, row in zip(ids, rows, strict=True)
        ],
    )
    return ids


async def list_for_event(session: AsyncSession, event_pk: int) -> list[Notification]:
    result = await session.execute(
        select(Notification).where(Notification.event_pk == event_pk).order_by(Notification.id)
    )
    return list(result.scalars())


async def list_notifications(session: AsyncSession, where: JournalFilter) -> list[Notification]:
    """The journal, newest first, filtered; `where.limit` rows at most."""
    statement = select(Notification).order_by(Notification.id.desc()).limit(where.limit)
    if where.status is not None:
        statement = statement.where(Notification.status == where.status)
    if where.event_type is not None:
        statement = statement.where(Notification.event_type == where.event_type)
    if where.client_id is not None:
        statement = statement.where(Notification.client_id == where.client_id)
    if where.since is not None:
        statement = statement.where(Notification.created_at >= where.since)
    if where.before_id is not None:
        statement = statement.where(Notification.id < where.before_id)
    if where.until is not None:
        statement = statement.where(Notification.created_at < where.until)
    if where.manager_id is not None:
        statement = statement.where(Notification.manager_id == where.manager_id)
    if where.document_number is not None:
        number = Event.payload[("document", "number")].as_string()
        statement = statement.where(
            Notification.event_pk.in_(select(Event.id).where(number == where.document_number))
        )
    if where.ids is not None:
        statement = statement.where(Notification.id.in_(list(where.ids)))
    return list((await session.execute(statement)).scalars())


async def recent_notifications(
    session: AsyncSession,
    *,
    status: str | None,
    manager_ids: Sequence[str] | None,
    limit: int,
) -> list[Notification]:
    """Newest first; `manager_ids` None means every notification (an admin's view)."""
    statement = select(Notification).order_by(Notification.id.desc()).limit(limit)
    if status is not None:
        statement = statement.where(Notification.status == status)
    if manager_ids is not None:
        statement = statement.where(Notification.manager_id.in_(list(manager_ids)))
    return list((await session.execute(statement)).scalars())


async def get_notification(session: AsyncSession, notification_id: int) -> Notification | None:
    return await session.get(Notification, notification_id)


async def get_history(session: AsyncSession, notification_id: int) -> list[NotificationHistory]:
    result = await session.execute(
        select(NotificationHistory)
        .where(NotificationHistory.notification_id == notification_id)
        .order_by(NotificationHistory.id)
    )
    return list(result.scalars())


async def transition(
    session: AsyncSession,
    notification_id: int,
    *,
    to_status: str,
    from_statuses: Collection[str],
    actor: str,
    reason: str | None = None,
    **fields: Any,
) -> Notification | None:
    """Move one notification to `to_status` if it is in one of `from_statuses`.

    The check and the change are one UPDATE, so two actors racing on the same row cannot
    both win. Returns the updated row, or None when the row is missing or in another status.
    """
    current = (
        await session.execute(
            select(Notification.status).where(Notification.id == notification_id)
        )
    ).scalar_one_or_none()
    if current is None or current not in from_statuses:
        return None
    now = utcnow()
    result = await session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.status == current)
        .values(status=to_status, reason=reason, updated_at=now, **fields)
        .returning(Notification)
        .execution_options(synchronize_session=False)
    )
    row = result.scalar_one_or_none()
    if row is None:
        return None
    await session.execute(
        insert(NotificationHistory).values(
            notification_id=notification_id,
            at=now,
            from_status=current,
            to_status=to_status,
            actor=actor,
            reason=reason,
            channel=row.channel,
        )
    )
    return row


async def get_status(session: AsyncSession, notification_id: int) -> str | None:
    """The notification's current status, or None when there is no such notification."""
    return (
        await session.execute(
            select(Notification.status).where(Notification.id == notification_id)
        )
    ).scalar_one_or_none()


async def event_ids_by_pk(session: AsyncSession, event_pks: Collection[int]) -> dict[int, str]:
    """The ERP's `event_id` of each stored event row in `event_pks` (missing rows omitted)."""
    if not event_pks:
        return {}
    result = await session.execute(
        select(Event.id, Event.event_id).where(Event.id.in_(set(event_pks)))
    )
    return dict(result.all())


class ReceiptMatch(StrEnum):
    """What a delivery receipt found in the journal."""

    APPLIED = "applied"
    FINAL = "final"
    """The notification with that provider id is past `sent` already."""
    UNKNOWN = "unknown"
    """No notification carries that provider id (yet)."""


async def apply_receipt(
    session: AsyncSession,
    *,
    provider: str,
    provider_message_id: str,
    to_status: str,
    reason: str | None,
    actor: str,
    now: datetime,
) -> ReceiptMatch:
    """Move the sent notification with this provider id to `to_status`."""
    table = Notification.__table__
    row = (
        await session.execute(
            select(table.c.id, table.c.status).where(
                table.c.provider == provider,
                table.c.provider_message_id == provider_message_id,
            )
        )
    ).first()
    if row is None:
        return ReceiptMatch.UNKNOWN
    if row.status != "sent":
        return ReceiptMatch.FINAL
    fields: dict[str, Any] = {"delivered_at": now} if to_status == "delivered" else {}
    updated = await transition(
        session,
        row.id,
        to_status=to_status,
        from_statuses=("sent",),
        actor=actor,
        reason=reason,
        **fields,
    )
    return ReceiptMatch.FINAL if updated is None else ReceiptMatch.APPLIED


async def sent_awaiting_receipt(
    session: AsyncSession, *, provider: str, since: datetime, limit: int
) -> list[tuple[int, str, str]]:
    """(id, provider_message_id, phone) of sent SMS still waiting for a delivery state."""
    table = Notification.__table__
    result = await session.execute(
        select(table.c.id, table.c.provider_message_id, table.c.phone)
        .where(
            table.c.provider == provider,
            table.c.status == "sent",
            table.c.sent_at >= since,
            table.c.provider_message_id.is_not(None),
        )
        .order_by(table.c.id)
        .limit(limit)
    )
    return [(row.id, row.provider_message_id, row.phone or "") for row in result]


async def count_without_client_since(
    session: AsyncSession, *, event_type: str, since: datetime, lock: bool = False
) -> int:
    """How many notifications of `event_type` that belong to no client (the test SMS, the
    admins' alerts) were created at or after `since`.

    `client_id IS NULL` keeps the count on the (client_id, id) index, off the ERP's rows.
    With `lock`, a transaction-scoped lock named after the event type is taken first on
    PostgreSQL, so count-then-insert in one transaction is one at a time across replicas
    (on SQLite, BEGIN IMMEDIATE already makes writers take turns).
    """
    if lock and session.get_bind().dialect.name == "postgresql":
        await session.execute(
            select(func.pg_advisory_xact_lock(func.hashtext(f"vestnik:count:{event_type}")))
        )
    table = Notification.__table__
    count = await session.scalar(
        select(func.count())
        .select_from(table)
        .where(
            table.c.client_id.is_(None),
            table.c.event_type == event_type,
            table.c.created_at >= since,
        )
    )
    return int(count or 0)


# --------------------------------------------------------------------------- manager prompts

_prompts = cast(Table, ManagerPrompt.__table__)


async def add_prompt(
    session: AsyncSession, *, notification_id: int, chat_id: int, message_id: int
) -> None:
    now = utcnow()
    await session.execute(
        insert_for(session, _prompts)
        .values(
            notification_id=notification_id,
            chat_id=chat_id,
            message_id=message_id,
            created_at=now,
        )
        .on_conflict_do_update(
            index_elements=[_prompts.c.notification_id, _prompts.c.chat_id],
            set_={"message_id": message_id, "created_at": now, "answered_at": None},
        )
    )


async def open_prompts(session: AsyncSession, notification_id: int) -> list[tuple[int, int]]:
    """(chat_id, message_id) of the prompts about a notification not yet answered."""
    result = await session.execute(
        select(_prompts.c.chat_id, _prompts.c.message_id).where(
            _prompts.c.notification_id == notification_id, _prompts.c.answered_at.is_(None)
        )
    )
    return [(row.chat_id, row.message_id) for row in result]


async def unprompted(
    session: AsyncSession,
    *,
    statuses: Collection[str],
    created_after: datetime,
    created_before: datetime,
    limit: int,
) -> list[int]:
    """Ids of notifications in `statuses`, created in the window, about which no prompt was
    ever sent (oldest first)."""
    result = await session.execute(
        select(_notifications.c.id)
        .where(
            _notifications.c.status.in_(list(statuses)),
            _notifications.c.created_at > created_after,
            _notifications.c.created_at < created_before,
            ~exists().where(_prompts.c.notification_id == _notifications.c.id),
        )
        .order_by(_notifications.c.id)
        .limit(limit)
    )
    return [row.id for row in result]


async def close_prompts(session: AsyncSession, notification_id: int, now: datetime) -> None:
    await session.execute(
        update(_prompts)
        .where(_prompts.c.notification_id == notification_id, _prompts.c.answered_at.is_(None))
        .values(answered_at=now)
    )


async def telegram_message_notifications(
    session: AsyncSession, messages: Collection[tuple[int, int]], *, since: datetime
) -> dict[tuple[int, int], int]:
    """The notification each Telegram message (chat id, message id) sent since `since` is
    about: a manager's prompt, or the message that delivered it. The journal keeps the
    delivering message's id but not its chat, so that half needs message ids unique across
    chats, which the sandbox's fake Telegram gives (`vestnik serve --sandbox`)."""
    message_ids = sorted({message_id for _, message_id in messages})
    if not message_ids:
        return {}
    delivered = await session.execute(
        select(_notifications.c.telegram_message_id, _notifications.c.id).where(
            _notifications.c.telegram_message_id.in_(message_ids),
            _notifications.c.sent_at >= since,
        )
    )
    by_message = {row.telegram_message_id: row.id for row in delivered}
    prompted = await session.execute(
        select(_prompts.c.chat_id, _prompts.c.message_id, _prompts.c.notification_id).where(
            _prompts.c.message_id.in_(message_ids), _prompts.c.created_at >= since
        )
    )
    by_prompt = {(row.chat_id, row.message_id): row.notification_id for row in prompted}
    found: dict[tuple[int, int], int] = {}
    for chat_id, message_id in messages:
        notification_id = by_prompt.get((chat_id, message_id), by_message.get(message_id))
        if notification_id is not None:
            found[(chat_id, message_id)] = notification_id
    return found
