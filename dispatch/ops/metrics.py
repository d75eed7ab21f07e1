"""Prometheus metrics of one process, in its own registry (no import-time globals).

Counters and histograms are fed where things happen (the webhook, the delivery service);
the journal's figures (notifications by status and channel, queue depth, age of the oldest
due notification) are read from the database when /metrics is scraped, so every replica
reports the same shared state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select

from storage.database import Database
from storage.models import BalanceCheck, Notification
from storage.statuses import Status
from storage.types import utcnow

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Scrapes more often than this reuse the last reading: the queries scan the journal.
JOURNAL_REFRESH_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class JournalFigures:
    by_status_channel: dict[tuple[str, str], int]
    due: int
    oldest_due: datetime | None
    balances: dict[tuple[str, str], float]
    """(provider, currency) → the latest balance read by the scheduler."""


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.events = Counter(
            "vestnik_events_total",
            "ERP events received, by type and result (accepted, duplicate, or the error code).",
            ["type", "result"],
            registry=registry,
        )
        self.delivery_latency = Histogram(
            "vestnik_delivery_latency_seconds",
            "From the notification entering the queue to the provider accepting it.",
            ["channel"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
            registry=registry,
        )
        self.attempts = Counter(
            "vestnik_delivery_attempts_total",
            "Delivery attempts by channel and outcome (sent, retry, permanent, blocked).",
            ["channel", "outcome"],
            registry=registry,
        )
        self.provider_errors = Counter(
            "vestnik_provider_errors_total",
            "Errors reported by Telegram or an SMS provider, by kind.",
            ["channel", "provider", "kind"],
            registry=registry,
        )
        self.telegram_429 = Counter(
            "vestnik_telegram_429_total",
            "Telegram 'Too Many Requests' answers.",
            registry=registry,
        )
        self.sms_balance = Gauge(
            "vestnik_sms_balance",
            "The latest SMS balance the scheduler read from each provider.",
            ["provider", "currency"],
            registry=registry,
        )
        self.notifications = Gauge(
            "vestnik_notifications",
            "Notifications in the journal by status and channel.",
            ["status", "channel"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "vestnik_queue_due",
            "Pending notifications that are due now.",
            registry=registry,
        )
        self.oldest_due_age = Gauge(
            "vestnik_queue_oldest_due_age_seconds",
            "How long the oldest due notification has been waiting (0 when none).",
            registry=registry,
        )
        self._journal_read_at = 0.0

    async def refresh_journal(self, db: Database) -> None:
        if time.monotonic() - self._journal_read_at < JOURNAL_REFRESH_SECONDS:
            return
        figures = await read_journal(db)
        self.notifications.clear()
        for (status, channel), count in figures.by_status_channel.items():
            self.notifications.labels(status=status, channel=channel).set(count)
        self.queue_depth.set(figures.due)
        age = 0.0
        if figures.oldest_due is not None:
            age = max(0.0, (utcnow() - figures.oldest_due).total_seconds())
        self.oldest_due_age.set(age)
        for (provider, currency), amount in figures.balances.items():
            self.sms_balance.labels(provider=provider, currency=currency).set(amount)
        self._journal_read_at = time.monotonic()

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def read_journal(db: Database) -> JournalFigures:
    table = Notification.__table__
    now = utcnow()
    async with db.sessions() as session:
        rows = await session.execute(
            select(table.c.status, table.c.channel, func.count()).group_by(
                table.c.status, table.c.channel
            )
        )
        by_status_channel = {
            (status, channel or "none"): int(count) for status, channel, count in rows.all()
        }
        due_row = (
            await session.execute(
                select(func.count(), func.min(table.c.next_attempt_at)).where(
                    table.c.status == Status.PENDING, table.c.next_attempt_at <= now
                )
            )
        ).one()
        checks = BalanceCheck.__table__
        latest = (
            select(checks.c.provider, func.max(checks.c.id).label("id"))
            .where(checks.c.balance.is_not(None))
            .group_by(checks.c.provider)
            .subquery()
        )
        balance_rows = await session.execute(
            select(checks.c.provider, checks.c.currency, checks.c.balance).join(
                latest, checks.c.id == latest.c.id
            )
        )
        balances = {
            (provider, currency or ""): float(amount)
            for provider, currency, amount in balance_rows.all()
        }
    return JournalFigures(
        by_status_channel=by_status_channel,
        due=int(due_row[0]),
        oldest_due=due_row[1],
        balances=balances,
    )
