"""Stored ERP events."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Event
from storage.types import utcnow
from storage.upsert import dialect_of, insert_of


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
    row = {
        "event_id": event_id,
        "type": type_,
        "occurred_at": occurred_at,
        "received_at": utcnow(),
        "client_id": client_id,
        "payload": payload,
    }
    statement = _insert_if_new(dialect_of(session))
    return (await session.execute(statement, row)).scalar_one_or_none()


@functools.lru_cache(maxsize=2)
def _insert_if_new(dialect: str) -> Any:
    """Built once per dialect: the values come as parameters, so SQLAlchemy reuses the
    compiled statement instead of building and hashing a new one per event."""
    table = Event.__table__
    return (
        insert_of(dialect)(table)
        .on_conflict_do_nothing(index_elements=[table.c.event_id])
        .returning(table.c.id)
    )


async def get_event_by_event_id(session: AsyncSession, event_id: str) -> Event | None:
    return (
        await session.execute(select(Event).where(Event.event_id == event_id))
    ).scalar_one_or_none()
