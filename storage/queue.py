"""The journal as a queue: claim due notifications with a lease, record what happened.

A claim is one UPDATE over a `FOR UPDATE SKIP LOCKED` sub-select (PostgreSQL; SQLite has one
writer, so the same statement without the locking clause is safe there). It takes due
`pending` rows and `sending` rows whose lease expired, so a crashed worker's rows come back
without a separate sweeper, and `scheduled` rows (quiet hours) once their `next_attempt_at`
has come: never earlier, and then like `pending` ones, a batch at a time under the same
rate limits (no burst when a night's worth of them falls due at once).
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
QUIET_HOURS_OVER = "quiet hours are over"
RECLAIMED = "lease expired; claimed again"


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
    telegram_text: str | None = None
    """The Telegram text (HTML) sent instead of `text` when the route is Telegram."""


_CLAIM_COLUMNS = (
    _notifications.c.id,
    _notifications.c.event_type,
    _notifications.c.recipient,
    _notifications.c.client_id,
    _notifications.c.manager_id,
    _notifications.c.channel,
    _notifications.c.phone,
    _notifications.c.text,
    _notifications.c.telegram_text,
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
    if dialect_of(session) == "postgresql":
        return await _claim_due_pg(session, now=now, lease=lease, limit=limit, telegram=telegram)
    due = or_(
        and_(
            _notifications.c.status.in_((Status.PENDING, Status.SCHEDULED)),
            _notifications.c.next_attempt_at <= now,
        ),
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
    claimed = [_claimed(row, previous[row.id]) for row in rows]
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
                    "reason": _CLAIM_REASONS.get(previous[item.id]),
                    "channel": item.channel,
                }
                for item in claimed
            ],
        )
    return claimed


# Why a claim took a row, for the history (a plain `pending` row needs no word).
_CLAIM_REASONS = {Status.SENDING.value: RECLAIMED, Status.SCHEDULED.value: QUIET_HOURS_OVER}


def _claimed(row: Any, previous: str) -> ClaimedNotification:
    return ClaimedNotification(
        id=row.id,
        event_type=row.event_type,
        recipient=row.recipient,
        client_id=row.client_id,
        manager_id=row.manager_id,
        channel=row.channel,
        phone=row.phone,
        text=row.text,
        telegram_text=row.telegram_text,
        attempts=row.attempts,
        created_at=row.created_at,
        queued_at=row.queued_at,
        lease_until=row.lease_until,
        reclaimed=previous == Status.SENDING,
    )


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
    if dialect_of(session) == "postgresql" and _fits_one_statement(items):
        return await _finish_many_pg(session, items)
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


# PostgreSQL: each of claim and finish is one statement (data-modifying CTEs), run as plain
# SQL on the session's connection. Through the Core expressions above, a batch of 32 cost
# three round trips and ~5 ms of statement building, compiling and parameter processing in
# Python for each of the two steps, which made the drain CPU-bound at a quarter of what the
# provider could take (bench/dispatch.py). The SQLite forms above stay the reference; the
# queue tests run both.

_CLAIM_RETURNING = ", ".join(f"n.{column.name}" for column in _CLAIM_COLUMNS)


def _claim_sql(lane: str) -> str:
    return f"""
WITH picked AS (
    SELECT id, status AS previous FROM notifications
    WHERE ((status IN ('{Status.PENDING}', '{Status.SCHEDULED}') AND next_attempt_at <= $1)
        OR (status = '{Status.SENDING}' AND lease_until < $1)){lane}
    ORDER BY next_attempt_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE notifications AS n
    SET status = '{Status.SENDING}', lease_until = $2, updated_at = $1
    FROM picked
    WHERE n.id = picked.id
    RETURNING {_CLAIM_RETURNING}, picked.previous
), logged AS (
    INSERT INTO notification_history
        (notification_id, at, from_status, to_status, actor, reason, channel)
    SELECT id, $1, previous, '{Status.SENDING}', '{WORKER_ACTOR}',
        CASE previous WHEN '{Status.SENDING}' THEN '{RECLAIMED}'
            WHEN '{Status.SCHEDULED}' THEN '{QUIET_HOURS_OVER}' END,
        channel
    FROM claimed
)
SELECT * FROM claimed"""


_CLAIM_SQL = {
    None: _claim_sql(""),
    True: _claim_sql(" AND channel = 'telegram'"),
    False: _claim_sql(" AND (channel <> 'telegram' OR channel IS NULL)"),
}


async def _claim_due_pg(
    session: AsyncSession, *, now: datetime, lease: timedelta, limit: int, telegram: bool | None
) -> list[ClaimedNotification]:
    connection = await session.connection()
    result = await connection.exec_driver_sql(_CLAIM_SQL[telegram], (now, now + lease, limit))
    return [_claimed(row, row.previous) for row in result.all()]


_FINISH_FIELDS = {
    "attempts": "integer",
    "channel": "text",
    "provider": "text",
    "provider_message_id": "text",
    "provider_parts": "integer",
    "cost": "numeric",
    "telegram_message_id": "bigint",
    "sent_at": "timestamptz",
    "next_attempt_at": "timestamptz",
}
"""The columns a delivery outcome may set, with their types for the `unnest` arrays."""

_HOP_KEYS = frozenset({"from_status", "to_status", "reason", "channel"})
_LAST = 2**31 - 1
"""The final history row of an item sorts after its hops."""


def _finish_sql() -> str:
    item_columns = [
        ("id", "bigint"),
        ("lease_until", "timestamptz"),
        ("status", "text"),
        ("reason", "text"),
        ("now", "timestamptz"),
    ]
    for name, kind in _FINISH_FIELDS.items():
        item_columns += [(f"set_{name}", "boolean"), (name, kind)]
    arrays = ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(item_columns, 1))
    names = ", ".join(name for name, _ in item_columns)
    first_hop = len(item_columns) + 1
    hops = ", ".join(
        f"${first_hop + i}::{kind}[]"
        for i, kind in enumerate(("bigint", "integer", "text", "text", "text", "text"))
    )
    sets = ",\n        ".join(
        f"{name} = CASE WHEN d.set_{name} THEN d.{name} ELSE n.{name} END"
        for name in _FINISH_FIELDS
    )
    return f"""
WITH data AS (
    SELECT * FROM unnest({arrays}) AS d({names})
), changed AS (
    UPDATE notifications AS n
    SET status = d.status, reason = d.reason, updated_at = d.now, lease_until = NULL,
        {sets}
    FROM data AS d
    WHERE n.id = d.id AND n.status = '{Status.SENDING}' AND n.lease_until = d.lease_until
    RETURNING n.id, n.channel, d.now, d.status, d.reason
), hops AS (
    SELECT * FROM unnest({hops}) AS h(id, seq, from_status, to_status, reason, channel)
), logged AS (
    INSERT INTO notification_history
        (notification_id, at, from_status, to_status, actor, reason, channel)
    SELECT id, at, from_status, to_status, '{WORKER_ACTOR}', reason, channel FROM (
        SELECT h.id, c.now AS at, h.from_status, h.to_status, h.reason, h.channel, h.seq
        FROM hops AS h JOIN changed AS c ON c.id = h.id
        UNION ALL
        SELECT c.id, c.now, '{Status.SENDING}', c.status, c.reason, c.channel, {_LAST}
        FROM changed AS c
    ) AS entries
    ORDER BY id, seq
)
SELECT id FROM changed"""


_FINISH_SQL = _finish_sql()


def _fits_one_statement(items: Sequence[Finish]) -> bool:
    """The one-statement form takes the usual outcome batch: distinct rows, known fields.
    Anything else (a second outcome for the same row in one batch) takes the general path."""
    ids = {item.notification_id for item in items}
    return (
        len(ids) == len(items)
        and all(key in _FINISH_FIELDS for item in items for key in item.fields)
        and all(hop.keys() <= _HOP_KEYS for item in items for hop in item.history)
    )


async def _finish_many_pg(session: AsyncSession, items: Sequence[Finish]) -> list[bool]:
    columns: list[list[Any]] = [
        [item.notification_id for item in items],
        [item.lease_until for item in items],
        [str(item.to_status) for item in items],
        [item.reason for item in items],
        [item.now for item in items],
    ]
    for name in _FINISH_FIELDS:
        columns.append([name in item.fields for item in items])
        columns.append([item.fields.get(name) for item in items])
    hops: list[list[Any]] = [[], [], [], [], [], []]
    for item in items:
        for seq, hop in enumerate(item.history):
            values = (
                item.notification_id,
                seq,
                _text(hop.get("from_status")),
                _text(hop.get("to_status")),
                hop.get("reason"),
                hop.get("channel"),
            )
            for column, value in zip(hops, values, strict=True):
                column.append(value)
    connection = await session.connection()
    result = await connection.exec_driver_sql(_FINISH_SQL, tuple(columns + hops))
    written = {row.id for row in result.all()}
    return [item.notification_id in written for item in items]


def _text(value: object) -> str | None:
    return None if value is None else str(value)
