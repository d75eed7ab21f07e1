"""Queries of the living order card: the events about one document for one client, and the
card message of each chat (CONTRACT §9)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.events import DocumentRef, documents_by_pk
from storage.models import Event, Notification, TelegramCard
from storage.types import utcnow
from storage.upsert import insert_for

# A document's history worth showing on one card; an endless one keeps its latest steps.
MAX_STEPS = 50


@dataclass(frozen=True, slots=True)
class CardKey:
    client_id: str
    kind: str
    number: str


@dataclass(frozen=True, slots=True)
class CardMessage:
    chat_id: int
    message_id: int
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class DocumentStep:
    """One stored event about the document, oldest first."""

    event_type: str
    occurred_at: datetime | None
    received_at: datetime
    payload: Mapping[str, Any]


async def key_of_notification(session: AsyncSession, notification_id: int) -> CardKey | None:
    """The card a client's notification belongs to, or None when its event names no
    document (kind and number) or the notification is not a client's."""
    row = (
        await session.execute(
            select(Notification.event_pk, Notification.client_id).where(
                Notification.id == notification_id
            )
        )
    ).one_or_none()
    if row is None or row.event_pk is None or not row.client_id:
        return None
    ref: DocumentRef | None = (await documents_by_pk(session, [row.event_pk])).get(row.event_pk)
    if ref is None or ref.kind is None or ref.number is None:
        return None
    return CardKey(row.client_id, ref.kind, ref.number)


async def document_steps(session: AsyncSession, key: CardKey) -> list[DocumentStep]:
    """The client's stored events about the document, in the order they happened."""
    # A number may come as a JSON number: compared as text on both dialects.
    kind = cast(Event.payload[("document", "kind")].as_string(), String)
    number = cast(Event.payload[("document", "number")].as_string(), String)
    rows = (
        await session.execute(
            select(Event.type, Event.occurred_at, Event.received_at, Event.payload)
            .where(Event.client_id == key.client_id, kind == key.kind, number == key.number)
            .order_by(Event.id.desc())
            .limit(MAX_STEPS)
        )
    ).all()
    steps = [DocumentStep(r.type, r.occurred_at, r.received_at, r.payload) for r in rows]
    steps.sort(key=lambda step: step.occurred_at or step.received_at)
    return steps


async def cards_of(session: AsyncSession, key: CardKey) -> dict[int, CardMessage]:
    """The current card message by chat."""
    rows = (
        await session.execute(
            select(TelegramCard.chat_id, TelegramCard.message_id, TelegramCard.sent_at).where(
                TelegramCard.client_id == key.client_id,
                TelegramCard.doc_kind == key.kind,
                TelegramCard.doc_number == key.number,
            )
        )
    ).all()
    return {r.chat_id: CardMessage(r.chat_id, r.message_id, r.sent_at) for r in rows}


async def save_cards(session: AsyncSession, key: CardKey, cards: Sequence[CardMessage]) -> None:
    """Make each of `cards` its chat's current card of the document."""
    if not cards:
        return
    now = utcnow()
    table = TelegramCard.__table__
    statement = insert_for(session, table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.client_id, table.c.doc_kind, table.c.doc_number, table.c.chat_id],
        set_={
            "message_id": statement.excluded.message_id,
            "sent_at": statement.excluded.sent_at,
            "updated_at": statement.excluded.updated_at,
        },
    )
    await session.execute(
        statement,
        [
            {
                "client_id": key.client_id,
                "doc_kind": key.kind,
                "doc_number": key.number,
                "chat_id": card.chat_id,
                "message_id": card.message_id,
                "sent_at": card.sent_at,
                "updated_at": now,
            }
            for card in cards
        ],
    )
