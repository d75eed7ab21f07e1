"""What the periodic jobs do to the tables: slot claims, and housekeeping deletes.

A slot claim is `INSERT … ON CONFLICT DO NOTHING` of `(job, slot)` into `job_runs`: the
replica whose row went in runs the job for that slot, every other replica skips it
(procrastinate's periodic-job shape). Housekeeping statements work in small batches, each
its own transaction chosen by the caller, so a shutdown in the middle loses one batch at
most.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    BalanceCheck,
    Event,
    JobRun,
    Notification,
    NotificationHistory,
    OutboxEmail,
    TelegramUpdate,
)
from storage.upsert import insert_for

# --------------------------------------------------------------------------- slot claims


async def claim_slot(
    session: AsyncSession, *, job: str, slot: datetime, replica: str, now: datetime
) -> bool:
    """Claim `(job, slot)` for `replica`; True when this call inserted the row."""
    claimed = await session.execute(
        insert_for(session, JobRun)
        .values(job=job, slot=slot, claimed_by=replica[:128], claimed_at=now)
        .on_conflict_do_nothing(index_elements=[JobRun.job, JobRun.slot])
        .returning(JobRun.job)
    )
    return claimed.first() is not None


async def finish_run(
    session: AsyncSession,
    *,
    job: str,
    slot: datetime,
    finished_at: datetime,
    result: dict[str, Any],
) -> None:
    await session.execute(
        update(JobRun)
        .where(JobRun.job == job, JobRun.slot == slot)
        .values(finished_at=finished_at, result=result)
    )


async def get_run(session: AsyncSession, *, job: str, slot: datetime) -> JobRun | None:
    return await session.get(JobRun, (job, slot))


async def prune_job_runs(session: AsyncSession, *, before: datetime) -> int:
    result = await session.execute(delete(JobRun).where(JobRun.slot < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- retention


async def delete_old_notifications(
    session: AsyncSession, *, before: datetime, keep_statuses: Collection[str], limit: int
) -> int:
    """Delete up to `limit` notifications created before `before` (with their history),
    except those in `keep_statuses` (still queued); returns how many."""
    ids = list(
        (
            await session.execute(
                select(Notification.id)
                .where(
                    Notification.created_at < before,
                    Notification.status.not_in(list(keep_statuses)),
                )
                .order_by(Notification.id)
                .limit(limit)
            )
        ).scalars()
    )
    if not ids:
        return 0
    await session.execute(
        delete(NotificationHistory).where(NotificationHistory.notification_id.in_(ids))
    )
    # Other rows that hang on a notification (manager prompts) go by ON DELETE CASCADE.
    await session.execute(delete(Notification).where(Notification.id.in_(ids)))
    return len(ids)


async def delete_old_events(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` events received before `before`; a notification that still
    points at one keeps its row (the reference becomes NULL)."""
    ids = list(
        (
            await session.execute(
                select(Event.id).where(Event.received_at < before).order_by(Event.id).limit(limit)
            )
        ).scalars()
    )
    if not ids:
        return 0
    await session.execute(delete(Event).where(Event.id.in_(ids)))
    return len(ids)


async def delete_old_balance_checks(session: AsyncSession, *, before: datetime, limit: int) -> int:
    ids = list(
        (
            await session.execute(
                select(BalanceCheck.id)
                .where(BalanceCheck.checked_at < before)
                .order_by(BalanceCheck.id)
                .limit(limit)
            )
        ).scalars()
    )
    if not ids:
        return 0
    await session.execute(delete(BalanceCheck).where(BalanceCheck.id.in_(ids)))
    return len(ids)


async def delete_old_emails(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Delete outbox e-mails created before `before`, sent or given up on."""
    ids = list(
        (
            await session.execute(
                select(OutboxEmail.id)
                .where(OutboxEmail.created_at < before)
                .order_by(OutboxEmail.id)
                .limit(limit)
            )
        ).scalars()
    )
    if not ids:
        return 0
    await session.execute(delete(OutboxEmail).where(OutboxEmail.id.in_(ids)))
    return len(ids)


async def delete_old_telegram_updates(
    session: AsyncSession, *, before: datetime, limit: int
) -> int:
    ids = list(
        (
            await session.execute(
                select(TelegramUpdate.update_id)
                .where(TelegramUpdate.received_at < before)
                .order_by(TelegramUpdate.update_id)
                .limit(limit)
            )
        ).scalars()
    )
    if not ids:
        return 0
    await session.execute(delete(TelegramUpdate).where(TelegramUpdate.update_id.in_(ids)))
    return len(ids)


# --------------------------------------------------------------------------- confirmations


async def stale_confirmation_ids(
    session: AsyncSession, *, status: str, created_before: datetime, limit: int
) -> list[int]:
    """Ids of notifications still in `status` that were created before `created_before`."""
    result = await session.execute(
        select(Notification.id)
        .where(Notification.status == status, Notification.created_at < created_before)
        .order_by(Notification.id)
        .limit(limit)
    )
    return list(result.scalars())
