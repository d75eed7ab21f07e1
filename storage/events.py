"""Stored ERP events."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Event
from storage.types import utcnow
from storage.upsert import dialect_of, insert_of


async def insert_events_if_new(
    session: AsyncSession, rows: Sequence[Mapping[str, Any]]
) -> dict[str, int]:
    """Insert the events (each row: event_id, type, occurred_at, client_id, payload) whose
    `event_id` is not stored yet, in one statement; returns the new rows' ids by event_id.

    Give each event_id once, rows in event_id order: rows are inserted (and their unique
    keys locked) in the order given. On PostgreSQL an event_id that a concurrent
    transaction is inserting waits here for it, so exactly one caller stores it.
    """
    if not rows:
        return {}
    now = utcnow()
    values = [{**row, "received_at": now} for row in rows]
    result = await session.execute(_insert_if_new(dialect_of(session)), values)
    return {row.event_id: row.id for row in result}


@functools.lru_cache(maxsize=2)
def _insert_if_new(dialect: str) -> Any:
    """Built once per dialect: the values come as parameters, so SQLAlchemy reuses the
    compiled statement (several rows go in as one multi-row INSERT)."""
    table = Event.__table__
    return (
        insert_of(dialect)(table)
        .on_conflict_do_nothing(index_elements=[table.c.event_id])
        .returning(table.c.id, table.c.event_id)
    )


async def get_event_by_event_id(session: AsyncSession, event_id: str) -> Event | None:
    return (
        await session.execute(select(Event).where(Event.event_id == event_id))
    ).scalar_one_or_none()
