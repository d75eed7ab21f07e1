"""Housekeeping and the scheduler's lifecycle: retention deletes old rows only, stale
confirmations expire with a history row, APScheduler's triggers run the jobs, and the
scheduler stops with the app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.scheduler import AppScheduler
from handlers.common.keys import SCHEDULER
from storage.models import (
    BalanceCheck,
    Event,
    JobRun,
    ManagerPrompt,
    Notification,
    NotificationHistory,
    OutboxEmail,
    TelegramUpdate,
)
from storage.types import utcnow
from tests.conftest import Service, make_settings, start_service
from tests.events import make_event

NOW = datetime(2030, 6, 1, 12, 0, 5, tzinfo=UTC)
RETENTION_DAYS = 30


def paused(service: Service) -> AppScheduler:
    scheduler = service.app[SCHEDULER]
    scheduler.aps.pause()
    return scheduler


@pytest.fixture
async def kept_small(database_url: str) -> AsyncIterator[Service]:
    """Retention of 30 days, deleting 10 rows per transaction (so batching is exercised)."""
    service = await start_service(
        make_settings(
            database_url,
            scheduler={"retention_days": RETENTION_DAYS, "retention_batch_rows": 10},
        )
    )
    try:
        yield service
    finally:
        await service.client.close()


async def count(service: Service, model: Any, *where: Any) -> int:
    async with service.db.sessions() as session:
        return int(
            (
                await session.execute(select(func.count()).select_from(model).where(*where))
            ).scalar_one()
        )


async def seed_journal(service: Service, *, at: datetime, events: int, status: str) -> list[int]:
    """`events` events received at `at`, each with one notification (created then) with two
    history rows; returns the notification ids."""
    ids: list[int] = []
    async with service.db.transaction() as session:
        for _ in range(events):
            event = Event(
                event_id=f"erp-{at.timestamp()}-{len(ids)}-{status}",
                type="client_order.ready",
                received_at=at,
                payload={},
            )
            session.add(event)
            await session.flush()
            note = Notification(
                event_pk=event.id,
                event_type="client_order.ready",
                recipient="client",
                status=status,
                created_at=at,
                updated_at=at,
            )
            session.add(note)
            await session.flush()
            session.add_all(
                [
                    NotificationHistory(
                        notification_id=note.id, at=at, to_status="pending", actor="test"
                    ),
                    NotificationHistory(
                        notification_id=note.id,
                        at=at,
                        from_status="pending",
                        to_status=status,
                        actor="test",
                    ),
                ]
            )
            ids.append(note.id)
    return ids


async def test_retention_deletes_what_is_older_than_its_keep_time_and_nothing_else(
    kept_small: Service,
) -> None:
    service = kept_small
    old = NOW - timedelta(days=RETENTION_DAYS, minutes=1)
    recent = NOW - timedelta(days=RETENTION_DAYS - 1)
    old_ids = await seed_journal(service, at=old, events=25, status="delivered")
    recent_ids = await seed_journal(service, at=recent, events=3, status="sent")
    [old_but_queued] = await seed_journal(service, at=old, events=1, status="pending")
    async with service.db.transaction() as session:
        session.add(ManagerPrompt(notification_id=old_ids[0], chat_id=77, message_id=1))
        session.add_all(
            [
                BalanceCheck(provider="main", checked_at=old, balance=10, currency="RUB"),
                BalanceCheck(provider="main", checked_at=recent, balance=20, currency="RUB"),
                OutboxEmail(recipients=["a@shop.test"], subject="old", body="x", created_at=old),
                OutboxEmail(
                    recipients=["a@shop.test"], subject="new", body="x", created_at=recent
                ),
                TelegramUpdate(update_id=1, received_at=NOW - timedelta(days=4)),
                TelegramUpdate(update_id=2, received_at=NOW - timedelta(days=1)),
                JobRun(
                    job="balance",
                    slot=NOW - timedelta(days=8),
                    claimed_by="old",
                    claimed_at=NOW - timedelta(days=8),
                ),
                JobRun(
                    job="balance",
                    slot=NOW - timedelta(days=1),
                    claimed_by="new",
                    claimed_at=NOW - timedelta(days=1),
                ),
            ]
        )

    run = await paused(service).run_job_now("retention", now=NOW)

    assert run.claimed
    assert run.error is None, run
    assert run.result == {
        "notifications": 25,
        "events": 26,
        "balance_checks": 1,
        "email_outbox": 1,
        "telegram_updates": 1,
        "job_runs": 1,
    }
    async with service.db.sessions() as session:
        left = set((await session.execute(select(Notification.id))).scalars())
        history_of = set(
            (await session.execute(select(NotificationHistory.notification_id))).scalars()
        )
        pending = await session.get(Notification, old_but_queued)
    assert left == {*recent_ids, old_but_queued}
    assert history_of == left, "history goes with its notification, and only then"
    assert pending is not None
    assert pending.event_pk is None, "its old event is gone; the queued row stays"
    assert await count(service, Event) == 3
    assert await count(service, ManagerPrompt) == 0
    assert await count(service, BalanceCheck) == 1
    assert await count(service, OutboxEmail, OutboxEmail.subject == "new") == 1
    assert await count(service, TelegramUpdate) == 1
    assert await count(service, JobRun, JobRun.claimed_by == "old") == 0

    # A second run finds nothing more to delete.
    again = await service.app[SCHEDULER].run_job_now("retention", now=NOW + timedelta(hours=1))
    assert again.result is not None
    assert set(again.result.values()) == {0}


async def test_stale_confirmations_are_cancelled_with_a_history_row(database_url: str) -> None:
    service = await start_service(
        make_settings(
            database_url,
            notify={"mode": "live"},
            event_types={"client_order.ready": {"confirm_before_send": True}},
            scheduler={"confirmation_expiry_hours": 72},
        )
    )
    try:
        status, body = await service.post_event(make_event("client_order.ready"))
        assert status == 202, body
        [note] = body["notifications"]
        assert note["status"] == "awaiting_confirmation"
        status, other = await service.post_event(make_event("client_order.created"))
        assert status == 202, other
        created = utcnow()
        scheduler = paused(service)

        run = await scheduler.run_job_now(
            "expire_confirmations", now=created + timedelta(hours=71)
        )
        assert run.result == {"expired": 0}
        assert (await service.history(note["id"]))[-1][1] == "awaiting_confirmation"

        run = await scheduler.run_job_now(
            "expire_confirmations", now=created + timedelta(hours=73)
        )
        assert run.result == {"expired": 1}
        history = await service.history(note["id"])
        assert history[-1][:2] == ("awaiting_confirmation", "cancelled")
        assert "72 h" in (history[-1][2] or "")
        async with service.db.sessions() as session:
            last = (
                await session.execute(
                    select(NotificationHistory)
                    .where(NotificationHistory.notification_id == note["id"])
                    .order_by(NotificationHistory.id.desc())
                    .limit(1)
                )
            ).scalar_one()
            others = {
                row.status
                for row in (
                    await session.execute(
                        select(Notification).where(Notification.id != note["id"])
                    )
                ).scalars()
            }
        assert last.actor == "scheduler"
        assert "cancelled" not in others, "only stale confirmations are touched"

        # An operator can no longer confirm it.
        status, _ = await service.admin("POST", f"/api/v1/notifications/{note['id']}/confirm")
        assert status == 409
    finally:
        await service.client.close()


async def test_apscheduler_triggers_the_jobs_and_stops_with_the_app(database_url: str) -> None:
    settings = make_settings(
        database_url,
        scheduler={"balance_check_seconds": 900, "receipt_poll_seconds": 120},
    )
    service = await start_service(settings)
    scheduler = service.app[SCHEDULER]
    try:
        assert scheduler.aps.running
        intervals = {
            job.id: job.trigger.interval.total_seconds() for job in scheduler.aps.get_jobs()
        }
        assert intervals == {
            "balance": 900,
            "receipts": 120,
            "email": 60,
            "retention": 3600,
            "expire_confirmations": 300,
        }
        # Bring the next fire time of two jobs forward: APScheduler itself runs them.
        for name in ("receipts", "retention"):
            scheduler.aps.modify_job(name, next_run_time=datetime.now(UTC))
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            async with service.db.sessions() as session:
                finished = set(
                    (
                        await session.execute(
                            select(JobRun.job).where(JobRun.finished_at.is_not(None))
                        )
                    ).scalars()
                )
            if {"receipts", "retention"} <= finished:
                break
            assert asyncio.get_running_loop().time() < deadline, f"only {finished} ran"
            await asyncio.sleep(0.02)
        assert "balance" not in finished
    finally:
        await service.client.close()
    assert not scheduler.aps.running


async def test_the_scheduler_can_be_disabled(database_url: str) -> None:
    service = await start_service(make_settings(database_url, scheduler={"enabled": False}))
    try:
        assert SCHEDULER not in service.app
    finally:
        await service.client.close()
