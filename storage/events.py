"""Stored ERP events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Event
from storage.types import utcnow
from storage.upsert import insert_for


async def insert_event_if_new(
    session: AsyncSession,
    *,
    event_id: str,
    type_: str,
    occurred_at: datetime | None,
    client_id: str | None,
    payload: dict[str, Any],
) -> int | None:
    """Insert the event and return its row id, or None when `event_id` is already stored.

    On PostgreSQL a concurrent insert of the same id waits here until the first transaction
    ends, so exactly one caller gets the id and the others see a duplicate.
    """
    table = Event.__table__
    statement = (
        insert_for(session, table)
        .values(
            event_id=event_id,
            type=type_,
            occurred_at=occurred_at,
            received_at=utcnow(),
            client_id=client_id,
            payload=payload,
        )
        .on_conflict_do_nothing(index_elements=[table.c.event_id])
        .returning(table.c.id)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def get_event_by_event_id(session: AsyncSession, event_id: str) -> Event | None:
    return (
        await session.execute(select(Event).where(Event.event_id == event_id))
    ).scalar_one_or_none()
