"""Stored ERP events."""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class DocumentRef:
    """The ERP document an event is about: `document.kind` and `document.number`."""

    kind: str | None
    number: str | None


def _scalar(value: Any) -> str | None:
    # `document` is free-form JSON: a number may come as 457, a kind as anything.
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


async def documents_by_pk(
    session: AsyncSession, event_pks: Collection[int]
) -> dict[int, DocumentRef]:
    """The document of each stored event in `event_pks`, in one query for a whole page of
    the journal. Only the two values leave the database, not the payload with its lines."""
    if not event_pks:
        return {}
    kind = Event.payload[("document", "kind")]
    number = Event.payload[("document", "number")]
    result = await session.execute(
        select(Event.id, kind, number).where(Event.id.in_(set(event_pks)))
    )
    return {pk: DocumentRef(_scalar(k), _scalar(n)) for pk, k, n in result.all()}
