"""What arrives through Telegram: handled update ids (so a redelivery is not handled
twice), the client chat's messages with their relayed copies, and shared contacts that
matched no client or manager."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ChatMessage, TelegramUpdate, UnmatchedContact
from storage.types import utcnow
from storage.upsert import insert_for

_updates = cast(Table, TelegramUpdate.__table__)
_messages = cast(Table, ChatMessage.__table__)
_unmatched = cast(Table, UnmatchedContact.__table__)


# --------------------------------------------------------------------------- updates


async def remember_update(session: AsyncSession, update_id: int, now: datetime) -> bool:
    """Record a handled update id; False when it was recorded before (a redelivery)."""
    statement = (
        insert_for(session, _updates)
        .values(update_id=update_id, received_at=now)
        .on_conflict_do_nothing(index_elements=[_updates.c.update_id])
        .returning(_updates.c.update_id)
    )
    return (await session.execute(statement)).first() is not None


async def forget_update(session: AsyncSession, update_id: int) -> None:
    """Let a redelivery of `update_id` be handled (its first handling failed)."""
    await session.execute(delete(_updates).where(_updates.c.update_id == update_id))


async def prune_updates(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(delete(_updates).where(_updates.c.received_at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- client chat


async def add_chat_message(
    session: AsyncSession,
    *,
    client_id: str | None,
    manager_id: str | None,
    direction: str,
    chat_id: int,
    telegram_message_id: int | None,
    relayed_chat_id: int | None,
    relayed_message_id: int | None,
    text: str | None,
) -> None:
    await session.execute(
        insert(_messages).values(
            client_id=client_id,
            manager_id=manager_id,
            direction=direction,
            chat_id=chat_id,
            telegram_message_id=telegram_message_id,
            relayed_chat_id=relayed_chat_id,
            relayed_message_id=relayed_message_id,
            text=text,
            created_at=utcnow(),
        )
    )


@dataclass(frozen=True, slots=True)
class RelayedMessage:
    client_id: str | None
    client_chat_id: int
    """The chat the client wrote from: where an answer goes."""


async def find_relayed_client_message(
    session: AsyncSession, *, relayed_chat_id: int, relayed_message_id: int
) -> RelayedMessage | None:
    """The client message whose relayed copy is `relayed_message_id` in a manager's chat."""
    row = (
        await session.execute(
            select(_messages.c.client_id, _messages.c.chat_id)
            .where(
                _messages.c.relayed_chat_id == relayed_chat_id,
                _messages.c.relayed_message_id == relayed_message_id,
                _messages.c.direction == "in",
            )
            .limit(1)
        )
    ).first()
    return None if row is None else RelayedMessage(row.client_id, row.chat_id)


# --------------------------------------------------------------------------- unmatched contacts


@dataclass(frozen=True, slots=True)
class UnmatchedContactRecord:
    id: int
    chat_id: int
    user_id: int | None
    phone: str
    name: str | None
    created_at: datetime


async def list_unmatched_contacts(
    session: AsyncSession, *, before_id: int | None, limit: int
) -> list[UnmatchedContactRecord]:
    """Newest first (by id, which only grows); `before_id` continues a previous page."""
    statement = select(
        _unmatched.c.id,
        _unmatched.c.chat_id,
        _unmatched.c.user_id,
        _unmatched.c.phone,
        _unmatched.c.name,
        _unmatched.c.created_at,
    )
    if before_id is not None:
        statement = statement.where(_unmatched.c.id < before_id)
    result = await session.execute(statement.order_by(_unmatched.c.id.desc()).limit(limit))
    return [
        UnmatchedContactRecord(
            id=row.id,
            chat_id=row.chat_id,
            user_id=row.user_id,
            phone=row.phone,
            name=row.name,
            created_at=row.created_at,
        )
        for row in result
    ]


async def record_unmatched_contact(
    session: AsyncSession,
    *,
    chat_id: int,
    user_id: int | None,
    phone: str,
    name: str | None,
    now: datetime,
) -> None:
    await session.execute(
        insert(_unmatched).values(
            chat_id=chat_id, user_id=user_id, phone=phone, name=name, created_at=now
        )
    )
