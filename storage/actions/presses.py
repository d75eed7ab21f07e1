"""Queries of `erp_action_presses` (the presses' outbox) and of what a button was made for."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ErpActionPress, Event, Notification, TelegramLink
from storage.upsert import insert_for

PENDING = "pending"
DELIVERED = "delivered"


@dataclass(frozen=True, slots=True)
class ButtonSource:
    """The notification a button was made for, and its event's ERP data."""

    notification_id: int
    recipient: str
    client_id: str | None
    event_id: str | None
    document: Any
    actions: Any
    """The event's `actions` as the ERP sent them (validated again by the caller)."""


async def actions_of(session: AsyncSession, notification_ids: Iterable[int]) -> dict[int, Any]:
    """The events' `actions` of those notifications that have any (one query per batch)."""
    ids = list(notification_ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(Notification.id, Event.payload["actions"])
        .join(Event, Event.id == Notification.event_pk)
        .where(Notification.id.in_(ids))
    )
    return {row[0]: row[1] for row in rows if row[1]}


async def button_source(session: AsyncSession, notification_id: int) -> ButtonSource | None:
    row = (
        await session.execute(
            select(
                Notification.id,
                Notification.recipient,
                Notification.client_id,
                Event.event_id,
                Event.payload["document"],
                Event.payload["actions"],
            )
            .join(Event, Event.id == Notification.event_pk)
            .where(Notification.id == notification_id)
        )
    ).first()
    if row is None:
        return None
    return ButtonSource(*row)


async def chat_of_client(session: AsyncSession, chat_id: int, client_id: str) -> bool:
    """Whether `chat_id` is (or was) linked to the client: only its chats got the buttons."""
    found = await session.execute(
        select(TelegramLink.id)
        .where(TelegramLink.chat_id == chat_id, TelegramLink.client_id == client_id)
        .limit(1)
    )
    return found.first() is not None


async def record(
    session: AsyncSession,
    *,
    notification_id: int,
    action: str,
    telegram_user_id: int | None,
    pressed_at: datetime,
    body: dict[str, Any],
) -> bool:
    """Store a press unless this button was pressed before; True when it is new."""
    statement = (
        insert_for(session, ErpActionPress)
        .values(
            notification_id=notification_id,
            action=action,
            telegram_user_id=telegram_user_id,
            pressed_at=pressed_at,
            status=PENDING,
            body=body,
            attempts=0,
            next_attempt_at=pressed_at,
        )
        .on_conflict_do_nothing(index_elements=["notification_id", "action"])
        .returning(ErpActionPress.id)
    )
    return (await session.execute(statement)).first() is not None


async def due(session: AsyncSession, *, now: datetime, limit: int) -> list[ErpActionPress]:
    """Undelivered presses whose next try is due, oldest first."""
    result = await session.execute(
        select(ErpActionPress)
        .where(ErpActionPress.status == PENDING, ErpActionPress.next_attempt_at <= now)
        .order_by(ErpActionPress.next_attempt_at, ErpActionPress.id)
        .limit(limit)
    )
    return list(result.scalars())


async def mark_delivered(session: AsyncSession, press_id: int, *, now: datetime) -> None:
    await session.execute(
        update(ErpActionPress)
        .where(ErpActionPress.id == press_id)
        .values(
            status=DELIVERED,
            delivered_at=now,
            next_attempt_at=None,
            attempts=ErpActionPress.attempts + 1,
            last_error=None,
        )
    )


async def mark_failed(
    session: AsyncSession, press_id: int, *, error: str, next_attempt_at: datetime
) -> None:
    await session.execute(
        update(ErpActionPress)
        .where(ErpActionPress.id == press_id)
        .values(
            attempts=ErpActionPress.attempts + 1,
            last_error=error,
            next_attempt_at=next_attempt_at,
        )
    )


async def presses_of(session: AsyncSession, notification_id: int) -> Sequence[ErpActionPress]:
    result = await session.execute(
        select(ErpActionPress)
        .where(ErpActionPress.notification_id == notification_id)
        .order_by(ErpActionPress.pressed_at, ErpActionPress.id)
    )
    return list(result.scalars())
