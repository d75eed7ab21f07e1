"""Balance checks, alert states and the e-mail outbox.

An alert fires once per crossing: `activate()` is one conditional UPDATE
(`active = false → true`), so two runs racing on the same state cannot both raise it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import links
from storage.models import AlertState, BalanceCheck, Manager, OutboxEmail, TelegramLink
from storage.upsert import insert_for

LOW_BALANCE = "low_balance"
BALANCE_UNREADABLE = "balance_unreadable"


@dataclass(frozen=True, slots=True)
class AlertStateRow:
    kind: str
    provider: str
    active: bool
    failures: int


@dataclass(frozen=True, slots=True)
class PendingEmail:
    id: int
    recipients: list[str]
    subject: str
    body: str
    attempts: int


# --------------------------------------------------------------------------- balance checks


async def record_check(
    session: AsyncSession,
    *,
    provider: str,
    checked_at: datetime,
    balance: Decimal | None,
    currency: str | None,
    error: str | None,
) -> int:
    result = await session.execute(
        insert_for(session, BalanceCheck)
        .values(
            provider=provider,
            checked_at=checked_at,
            balance=balance,
            currency=currency,
            error=error,
        )
        .returning(BalanceCheck.id)
    )
    return int(result.scalar_one())


async def list_checks(session: AsyncSession, *, provider: str | None = None) -> list[BalanceCheck]:
    """Every stored check, oldest first."""
    statement = select(BalanceCheck).order_by(BalanceCheck.checked_at, BalanceCheck.id)
    if provider is not None:
        statement = statement.where(BalanceCheck.provider == provider)
    return list((await session.execute(statement)).scalars())


async def last_check(session: AsyncSession, provider: str) -> BalanceCheck | None:
    result = await session.execute(
        select(BalanceCheck)
        .where(BalanceCheck.provider == provider)
        .order_by(BalanceCheck.checked_at.desc(), BalanceCheck.id.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


# --------------------------------------------------------------------------- alert states


async def ensure_state(session: AsyncSession, *, kind: str, provider: str, now: datetime) -> None:
    await session.execute(
        insert_for(session, AlertState)
        .values(kind=kind, provider=provider, active=False, failures=0, updated_at=now)
        .on_conflict_do_nothing(index_elements=[AlertState.kind, AlertState.provider])
    )


async def get_state(session: AsyncSession, *, kind: str, provider: str) -> AlertStateRow | None:
    row = (
        await session.execute(
            select(AlertState.active, AlertState.failures).where(
                AlertState.kind == kind, AlertState.provider == provider
            )
        )
    ).first()
    if row is None:
        return None
    return AlertStateRow(kind, provider, bool(row.active), int(row.failures))


async def activate(session: AsyncSession, *, kind: str, provider: str, now: datetime) -> bool:
    """Set the state active; True only for the call that changed it from inactive."""
    result = await session.execute(
        update(AlertState)
        .where(
            AlertState.kind == kind,
            AlertState.provider == provider,
            AlertState.active.is_(False),
        )
        .values(active=True, updated_at=now)
        .returning(AlertState.kind)
    )
    return result.first() is not None


async def rearm(session: AsyncSession, *, kind: str, provider: str, now: datetime) -> bool:
    """Make the state inactive with no failures counted; True when it was active (the
    alert is re-armed), False when it only reset the failure count or changed nothing."""
    was_active = (
        await session.execute(
            update(AlertState)
            .where(
                AlertState.kind == kind,
                AlertState.provider == provider,
                AlertState.active.is_(True),
            )
            .values(active=False, failures=0, updated_at=now)
            .returning(AlertState.kind)
        )
    ).first() is not None
    if not was_active:
        await session.execute(
            update(AlertState)
            .where(
                AlertState.kind == kind,
                AlertState.provider == provider,
                AlertState.failures != 0,
            )
            .values(failures=0, updated_at=now)
        )
    return was_active


async def count_failure(
    session: AsyncSession, *, kind: str, provider: str, now: datetime
) -> AlertStateRow:
    """Add one to the consecutive failures; returns the state after the change."""
    result = await session.execute(
        update(AlertState)
        .where(AlertState.kind == kind, AlertState.provider == provider)
        .values(failures=AlertState.failures + 1, updated_at=now)
        .returning(AlertState.active, AlertState.failures)
    )
    row = result.one()
    return AlertStateRow(kind, provider, bool(row.active), int(row.failures))


# --------------------------------------------------------------------------- admins


async def admin_chat_ids(session: AsyncSession) -> list[int]:
    """Telegram chats of admin managers that may receive messages (linked, not stopped,
    not blocked), each once."""
    result = await session.execute(
        select(TelegramLink.chat_id)
        .join(Manager, Manager.id == TelegramLink.manager_id)
        .where(Manager.is_admin.is_(True), links.usable())
        .group_by(TelegramLink.chat_id)
        .order_by(func.min(TelegramLink.id))
    )
    return [int(chat_id) for chat_id in result.scalars()]


# --------------------------------------------------------------------------- e-mail outbox


async def enqueue_email(
    session: AsyncSession,
    *,
    recipients: Sequence[str],
    subject: str,
    body: str,
    now: datetime,
) -> int:
    result = await session.execute(
        insert_for(session, OutboxEmail)
        .values(
            recipients=list(recipients),
            subject=subject[:255],
            body=body,
            created_at=now,
            attempts=0,
        )
        .returning(OutboxEmail.id)
    )
    return int(result.scalar_one())


async def pending_emails(
    session: AsyncSession, *, created_since: datetime, limit: int
) -> list[PendingEmail]:
    """Unsent e-mails created at or after `created_since`, oldest first."""
    result = await session.execute(
        select(
            OutboxEmail.id,
            OutboxEmail.recipients,
            OutboxEmail.subject,
            OutboxEmail.body,
            OutboxEmail.attempts,
        )
        .where(OutboxEmail.sent_at.is_(None), OutboxEmail.created_at >= created_since)
        .order_by(OutboxEmail.id)
        .limit(limit)
    )
    return [
        PendingEmail(row.id, list(row.recipients), row.subject, row.body, int(row.attempts))
        for row in result
    ]


async def mark_sent(session: AsyncSession, email_id: int, *, now: datetime) -> bool:
    result = await session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.id == email_id, OutboxEmail.sent_at.is_(None))
        .values(sent_at=now, attempts=OutboxEmail.attempts + 1, last_error=None)
        .returning(OutboxEmail.id)
    )
    return result.first() is not None


async def mark_failed(session: AsyncSession, email_id: int, *, error: str) -> None:
    await session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.id == email_id, OutboxEmail.sent_at.is_(None))
        .values(attempts=OutboxEmail.attempts + 1, last_error=error[:2000])
    )


async def list_emails(session: AsyncSession) -> list[OutboxEmail]:
    """The whole outbox, oldest first."""
    return list((await session.execute(select(OutboxEmail).order_by(OutboxEmail.id))).scalars())


async def try_outbox_lock(session: AsyncSession, key: int) -> bool:
    """On PostgreSQL, a transaction-scoped advisory lock so one replica at a time sends the
    outbox; elsewhere (SQLite: one process) always True."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    result = await session.execute(select(func.pg_try_advisory_xact_lock(key)))
    return bool(result.scalar_one())
