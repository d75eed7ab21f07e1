"""Housekeeping jobs: journal retention and the expiry of stale confirmations.

Both work in small batches, one transaction each, so a shutdown (which cancels a running
job) loses one batch at most and the next run carries on.

- Retention (`retention_days`, default 365): notifications created earlier (with their
  status history; rows still queued or awaiting confirmation are kept), events received
  earlier, balance checks and outbox e-mails; handled Telegram update ids after
  `telegram_updates_keep_days`; the scheduler's own slot claims after `job_runs_keep_days`.
- Expiry (`confirmation_expiry_hours`, default 72): a notification still
  `awaiting_confirmation` that long after it was created becomes `cancelled`, with a
  history row (actor `scheduler`) saying why.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.config import SchedulerSettings
from storage import notifications
from storage.database import Database
from storage.ops import jobs
from storage.statuses import Status

logger = logging.getLogger(__name__)

ACTOR = "scheduler"
EXPIRY_BATCH = 100

# Never deleted by age: the workers or an operator still have to act on these.
_ACTIVE_STATUSES = (Status.PENDING, Status.SENDING, Status.AWAITING_CONFIRMATION)

BatchDelete = Callable[[AsyncSession, datetime, int], Awaitable[int]]


class Housekeeping:
    def __init__(
        self,
        *,
        db: Database,
        settings: SchedulerSettings,
        on_changed: Callable[[Sequence[int]], None] | None = None,
    ) -> None:
        """`on_changed` hears the ids of notifications this changed (after the commit)."""
        self._db = db
        self._settings = settings
        self._on_changed = on_changed

    async def retention(self, now: datetime) -> dict[str, int]:
        """Delete what is older than its keep time; returns the rows deleted per table."""
        settings = self._settings
        journal_cutoff = now - timedelta(days=settings.retention_days)
        batch = settings.retention_batch_rows

        async def notifications_batch(session: AsyncSession, before: datetime, limit: int) -> int:
            return await jobs.delete_old_notifications(
                session, before=before, keep_statuses=_ACTIVE_STATUSES, limit=limit
            )

        async def events_batch(session: AsyncSession, before: datetime, limit: int) -> int:
            return await jobs.delete_old_events(session, before=before, limit=limit)

        async def checks_batch(session: AsyncSession, before: datetime, limit: int) -> int:
            return await jobs.delete_old_balance_checks(session, before=before, limit=limit)

        async def emails_batch(session: AsyncSession, before: datetime, limit: int) -> int:
            return await jobs.delete_old_emails(session, before=before, limit=limit)

        async def updates_batch(session: AsyncSession, before: datetime, limit: int) -> int:
            return await jobs.delete_old_telegram_updates(session, before=before, limit=limit)

        deleted = {
            "notifications": await self._in_batches(notifications_batch, journal_cutoff, batch),
            "events": await self._in_batches(events_batch, journal_cutoff, batch),
            "balance_checks": await self._in_batches(checks_batch, journal_cutoff, batch),
            "email_outbox": await self._in_batches(emails_batch, journal_cutoff, batch),
            "telegram_updates": await self._in_batches(
                updates_batch, now - timedelta(days=settings.telegram_updates_keep_days), batch
            ),
        }
        async with self._db.transaction() as session:
            deleted["job_runs"] = await jobs.prune_job_runs(
                session, before=now - timedelta(days=settings.job_runs_keep_days)
            )
        if any(deleted.values()):
            logger.info("retention deleted %s", deleted)
        return deleted

    async def _in_batches(self, delete_batch: BatchDelete, before: datetime, limit: int) -> int:
        total = 0
        while True:
            async with self._db.transaction() as session:
                count = await delete_batch(session, before, limit)
            total += count
            if count < limit:
                return total

    async def expire_confirmations(self, now: datetime) -> dict[str, int]:
        """Cancel notifications left `awaiting_confirmation` for too long."""
        hours = self._settings.confirmation_expiry_hours
        cutoff = now - timedelta(hours=hours)
        reason = f"not confirmed within {hours} h: cancelled by the scheduler"
        expired = 0
        while True:
            changed_ids: list[int] = []
            async with self._db.transaction() as session:
                ids = await jobs.stale_confirmation_ids(
                    session,
                    status=Status.AWAITING_CONFIRMATION,
                    created_before=cutoff,
                    limit=EXPIRY_BATCH,
                )
                for notification_id in ids:
                    changed = await notifications.transition(
                        session,
                        notification_id,
                        to_status=Status.CANCELLED,
                        from_statuses=(Status.AWAITING_CONFIRMATION,),
                        actor=ACTOR,
                        reason=reason,
                    )
                    if changed is not None:
                        changed_ids.append(notification_id)
            expired += len(changed_ids)
            if self._on_changed is not None:
                self._on_changed(changed_ids)
            if len(ids) < EXPIRY_BATCH:
                break
        if expired:
            logger.info("expired %d stale confirmation(s)", expired)
        return {"expired": expired}
