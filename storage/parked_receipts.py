"""Receipts that arrived before the send they confirm was recorded (see `ParkedReceipt`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import String, Table, any_, bindparam, delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Notification, ParkedReceipt
from storage.upsert import dialect_of, insert_for

_parked = cast(Table, ParkedReceipt.__table__)


@dataclass(frozen=True, slots=True)
class Parked:
    provider: str
    provider_message_id: str
    status: str
    reason: str | None
    actor: str
    received_at: datetime


async def park(session: AsyncSession, receipt: Parked) -> None:
    """Keep `receipt` for later; a later receipt for the same message replaces it."""
    values = {
        "provider": receipt.provider,
        "provider_message_id": receipt.provider_message_id,
        "status": receipt.status,
        "reason": receipt.reason,
        "actor": receipt.actor,
        "received_at": receipt.received_at,
    }
    statement = insert_for(session, _parked).values(**values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[_parked.c.provider, _parked.c.provider_message_id],
            set_={
                key: statement.excluded[key]
                for key in ("status", "reason", "actor", "received_at")
            },
        )
    )


async def oldest(session: AsyncSession, *, limit: int) -> list[Parked]:
    result = await session.execute(select(_parked).order_by(_parked.c.received_at).limit(limit))
    return _records(result)


async def find(session: AsyncSession, keys: list[tuple[str, str]]) -> list[Parked]:
    """The parked receipts for these (provider, provider message id) pairs, if any."""
    if not keys:
        return []
    if dialect_of(session) == "postgresql":
        # One array parameter, a statement built once: the outcome writer asks this for
        # every batch of sent SMS, and a tuple IN of 32 pairs cost ~1 ms to build and bind.
        ids = sorted({message_id for _, message_id in keys})
        wanted = set(keys)
        rows = await session.execute(_FIND_BY_IDS, {"ids": ids})
        return [r for r in _records(rows) if (r.provider, r.provider_message_id) in wanted]
    key = tuple_(_parked.c.provider, _parked.c.provider_message_id)
    return _records(await session.execute(select(_parked).where(key.in_(keys))))


_FIND_BY_IDS = select(_parked).where(
    _parked.c.provider_message_id == any_(bindparam("ids", type_=ARRAY(String)))
)


def _records(result: Any) -> list[Parked]:
    return [
        Parked(
            provider=row.provider,
            provider_message_id=row.provider_message_id,
            status=row.status,
            reason=row.reason,
            actor=row.actor,
            received_at=row.received_at,
        )
        for row in result
    ]


async def forget(session: AsyncSession, keys: list[tuple[str, str]]) -> None:
    if keys:
        await session.execute(
            delete(_parked).where(
                tuple_(_parked.c.provider, _parked.c.provider_message_id).in_(keys)
            )
        )


async def count_for(session: AsyncSession, provider: str) -> int:
    """How many receipts of this provider are parked (they are capped per provider)."""
    statement = select(func.count()).select_from(_parked).where(_parked.c.provider == provider)
    return int(await session.scalar(statement) or 0)


async def newest_notification_id(session: AsyncSession) -> int:
    """The highest notification id so far (0 when there is none): SMSC's message ids are our
    notification ids, so a receipt for an id far beyond it is not worth parking."""
    table = cast(Table, Notification.__table__)
    return int(await session.scalar(select(func.max(table.c.id))) or 0)
