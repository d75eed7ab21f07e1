"""The journal as a queue: claim due notifications with a lease, record what happened.

A claim is one UPDATE over a `FOR UPDATE SKIP LOCKED` sub-select (PostgreSQL; SQLite has one
writer, so the same statement without the locking clause is safe there). It takes due
`pending` rows and `sending` rows whose lease expired, so a crashed worker's rows come back
without a separate sweeper.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, Update, and_, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Notification, NotificationHistory
from storage.statuses import Status
from storage.upsert import dialect_of

_notifications = cast(Table, Notification.__table__)
_history = cast(Table, NotificationHistory.__table__)

WORKER_ACTOR = "worker"


@dataclass(frozen=True, slots=True)
class ClaimedNotification:
    """A notification leased to this worker until `lease_until`."""

    id: int
    event_type: str
    recipient: str
    client_id: str | None
    manager_id: str | None
    channel: str | None
    phone: str | None
    text: str | None
    attempts: int
    created_at: datetime
    queued_at: datetime | None
    lease_until: datetime
    reclaimed: bool
    """The previous worker's lease ran out (it crashed or stalled)."""


_CLAIM_COLUMNS = (
    _notifications.c.id,
    _notifications.c.event_type,
    _notifications.c.recipient,
    _notifications.c.client_id,
    _notifications.c.manager_id,
    _notifications.c.channel,
    _notifications.c.phone,
    _notifications.c.text,
    _notifications.c.attempts,
    _notifications.c.created_at,
    _notifications.c.queued_at,
    _notifications.c.lease_until,
)


async def claim_due(
    session: AsyncSession,
    *,
    now: datetime,
    lease: timedelta,
    limit: int,
    telegram: bool | None = None,
) -> list[ClaimedNotification]:
    """Lease up to `limit` due notifications to the caller (status `sending`).

    `telegram` picks a lane: True takes only rows planned for Telegram, False only the
    others (SMS, no route yet), None all of them.
    """
    due = or_(
        and_(_notifications.c.status == Status.PENDING, _notifications.c.next_attempt_at <= now),
        and_(_notifications.c.status == Status.SENDING, _notifications.c.lease_until < now),
    )
    if telegram is True:
        due = and_(due, _notifications.c.channel == "telegram")
    elif telegram is False:
        due = and_(
            due,
            or_(_notifications.c.channel != "telegram", _notifications.c.channel.is_(None)),
        )
    candidates = (
        select(_notifications.c.id, _notifications.c.status)
        .where(due)
        .order_by(_notifications.c.next_attempt_at)
        .limit(limit)
    )
    if dialect_of(session) == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    picked = (await session.execute(candidates)).all()
    if not picked:
        return []
    previous = {row.id: row.status for row in picked}
    lease_until = now + lease
    result = await session.execute(
        update(_notifications)
        .where(_notifications.c.id.in_(list(previous)), due)
        .values(status=Status.SENDING, lease_until=lease_until, updated_at=now)
        .returning(*_CLAIM_COLUMNS)
    )
    rows = result.all()
    claimed = [
        ClaimedNotification(
            id=row.id,
            event_type=row.event_type,
            recipient=row.recipient,
            client_id=row.client_id,
            manager_id=row.manager_id,
            channel=row.channel,
            phone=row.phone,
            text=row.text,
            attempts=row.attempts,
            created_at=row.created_at,
            queued_at=row.queued_at,
            lease_until=row.lease_until,
            reclaimed=previous[row.id] == Status.SENDING,
        )
        for row in rows
    ]
    if claimed:
        await session.execute(
            insert(_history),
            [
                {
                    "notification_id": item.id,
                    "at": now,
                    "from_status": previous[item.id],
                    "to_status": Status.SENDING,
                    "actor": WORKER_ACTOR,
                    "reason": "lease expired; claimed again" if item.reclaimed else None,
                    "channel": item.channel,
                }
                for item in claimed
            ],
        )
    return claimed


@dataclass(frozen=True, slots=True)
class Finish:
    """The end of one delivery attempt, to be recorded if the lease is still ours."""

    notification_id: int
    lease_until: datetime
    to_status: str
    now: datetime
    reason: str | None
    history: Sequence[Mapping[str, Any]] = ()
    """Intermediate rows (e.g. the switch to the reserve route), written before the final one."""
    fields: Mapping[str, Any] = field(default_factory=dict)


async def finish(
    session: AsyncSession,
    notification_id: int,
    *,
    lease_until: datetime,
    to_status: str,
    now: datetime,
    reason: str | None,
    history: Sequence[Mapping[str, Any]] = (),
    **fields: Any,
) -> bool:
    """Record the end of one delivery attempt, if the lease is still ours.

    False when another worker took the row over (our lease expired): then nothing is written.
    """
    item = Finish(notification_id, lease_until, to_status, now, reason, history, fields)
    return (await finish_many(session, [item]))[0]


async def finish_many(session: AsyncSession, items: Sequence[Finish]) -> list[bool]:
    """Record several attempts at once; per item, whether it was written.

    A row changes only while it is still `sending` under the item's lease (False: another
    worker owns it now, nothing is written for it). The rows are read and locked first, then
    changed by one prepared UPDATE run for many parameter sets (one per set of changed
    columns), and all history rows go in one INSERT: a few statements per batch instead of
    two per row, each built once and reused.
    """
    if not items:
        return []
    owned = select(_notifications.c.id, _notifications.c.lease_until, _notifications.c.channel)
    owned = owned.where(
        _notifications.c.id.in_([item.notification_id for item in items]),
        _notifications.c.status == Status.SENDING,
    )
    if dialect_of(session) == "postgresql":
        owned = owned.with_for_update()  # SQLite: BEGIN IMMEDIATE already holds the writer lock
    current = {row.id: row for row in (await session.execute(owned)).all()}
    recorded: list[bool] = []
    updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    rows: list[dict[str, Any]] = []
    for item in items:
        row = current.get(item.notification_id)
        ours = row is not None and row.lease_until == item.lease_until
        recorded.append(ours)
        if not ours:
            continue
        del current[item.notification_id]  # a second item for the same lease finds it taken
        values = {
            "status": item.to_status,
            "reason": item.reason,
            "updated_at": item.now,
            "lease_until": None,
            **item.fields,
        }
        columns = tuple(sorted(values))
        updates.setdefault(columns, []).append(
            {"row_id": item.notification_id, **{f"new_{key}": values[key] for key in columns}}
        )
        common = {"notification_id": item.notification_id, "at": item.now, "actor": WORKER_ACTOR}
        rows.extend({**common, **hop} for hop in item.history)
        rows.append(
            {
                **common,
                "from_status": Status.SENDING,
                "to_status": item.to_status,
                "reason": item.reason,
                "channel": values.get("channel", row.channel if row is not None else None),
            }
        )
    for columns, parameters in updates.items():
        await session.execute(_update_by_id(columns), parameters)
    if rows:
        await session.execute(insert(_history), rows)
    return recorded


@functools.lru_cache(maxsize=64)
def _update_by_id(columns: tuple[str, ...]) -> Update:
    """`UPDATE notifications SET <columns> WHERE id = :row_id`, one statement object per
    column set, so SQLAlchemy compiles it once and the driver runs it as an executemany."""
    return (
        update(_notifications)
        .where(_notifications.c.id == bindparam("row_id"))
        .values({column: bindparam(f"new_{column}") for column in columns})
    )


async def release(
    session: AsyncSession,
    ids_and_leases: Sequence[tuple[int, datetime]],
    *,
    now: datetime,
    reason: str,
    next_attempt_at: datetime | None = None,
) -> int:
    """Give leased rows back to the queue untouched (shutdown, local rate limit)."""
    items = [
        Finish(
            notification_id,
            lease_until,
            Status.PENDING,
            now,
            reason,
            fields={"next_attempt_at": next_attempt_at or now},
        )
        for notification_id, lease_until in ids_and_leases
    ]
    return sum(await finish_many(session, items))
