"""The scheduler inside the app: periodic jobs (balance, receipts, e-mail, housekeeping).

APScheduler 3.11's `AsyncIOScheduler` needs the running loop, so it starts in a
`cleanup_ctx` (after the workers, so it stops first); its shutdown cancels running jobs,
which is why every job body commits in small steps.

Several replicas may run the same jobs: each run first claims its time slot,
`slot = floor(now / interval) * interval` (UTC), with `INSERT … ON CONFLICT DO NOTHING` into
`job_runs`; only the replica whose row went in runs the job for that slot.

| job | interval setting (default) | does |
| --- | --- | --- |
| `balance` | `balance_check_seconds` (600) | reads, stores and alerts on the SMS balance |
| `receipts` | `receipt_poll_seconds` (300) | early receipts; polls status endpoints for sent SMS |
| `email` | `email_retry_seconds` (60) | sends e-mails left in the outbox (SMTP was down) |
| `retention` | `housekeeping_seconds` (3600) | deletes journal rows older than `retention_days` |
| `expire_confirmations` | `confirmation_check_seconds` (300) | cancels stale ones; late prompts |

Tests (and operators) run a job at once with `await app[SCHEDULER].run_job_now(name,
now=...)`, which goes through the same slot claim.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.keys import TELEGRAM, TELEGRAM_CHANNEL
from bot.settings import Settings
from dispatch.delivery.receipts import poll_receipts
from dispatch.ops.alerts import AlertSender
from dispatch.ops.balance import BalanceMonitor
from dispatch.ops.email import Mailer
from dispatch.ops.housekeeping import Housekeeping
from dispatch.ops.job_names import JobName
from handlers.common.keys import (
    DB,
    RENDERER,
    RUNTIME_CONFIG,
    SCHEDULER,
    SMS_PROVIDERS,
    STATUS_CHANGES,
    ManualRun,
)
from storage.database import Database, describe_db_error
from storage.ops import jobs
from storage.types import utcnow

logger = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STOP_GRACE_SECONDS = 5.0

JobBody = Callable[[datetime], Awaitable[dict[str, Any]]]


def slot_of(now: datetime, interval_seconds: int) -> datetime:
    """The start of the time slot `now` falls in: floor(now / interval) * interval, UTC."""
    elapsed = int((now - EPOCH).total_seconds())
    return EPOCH + timedelta(seconds=elapsed - elapsed % interval_seconds)


def make_replica_id() -> str:
    """`hostname:pid:random`: tells the replicas apart in `job_runs.claimed_by`."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class Job:
    name: JobName
    interval_seconds: int
    body: JobBody


@dataclass(frozen=True, slots=True)
class JobRunResult:
    job: str
    slot: datetime
    claimed: bool
    """False: another run (this or another replica) already had this slot; nothing ran."""
    result: dict[str, Any] | None = None
    error: str | None = None


class AppScheduler:
    """The periodic jobs of one replica and the APScheduler that triggers them."""

    def __init__(self, settings: Settings, *, replica_id: str | None = None) -> None:
        self.settings = settings
        self.replica_id = replica_id or make_replica_id()
        self.aps = AsyncIOScheduler(timezone=UTC)
        self._db: Database | None = None
        self._jobs: dict[str, Job] = {}
        self._running: set[asyncio.Task[Any]] = set()
        self.monitor: BalanceMonitor | None = None
        self.mailer: Mailer | None = None

    # ------------------------------------------------------------------ wiring

    def bind(self, app: web.Application) -> None:
        """Build the jobs from the running app's resources (database, providers, bot)."""
        settings = self.settings
        scheduler = settings.scheduler
        db = app[DB]
        providers = app[SMS_PROVIDERS]
        self._db = db
        self.mailer = Mailer(
            settings.smtp, db=db, max_age=timedelta(hours=scheduler.email_max_age_hours)
        )
        self.monitor = BalanceMonitor(
            db=db,
            config=app[RUNTIME_CONFIG],
            providers=providers,
            sender=AlertSender(db=db, renderer=app[RENDERER], telegram=app[TELEGRAM_CHANNEL]),
            mailer=self.mailer,
            failures_before_alert=scheduler.balance_failures_before_alert,
        )
        housekeeping = Housekeeping(db=db, settings=scheduler, on_changed=app[STATUS_CHANGES])
        mailer = self.mailer

        async def receipts(now: datetime) -> dict[str, Any]:
            return asdict(await poll_receipts(db, await providers.refresh(db)))

        async def email(now: datetime) -> dict[str, Any]:
            return dict((await mailer.flush(now)).as_dict())

        async def retention(now: datetime) -> dict[str, Any]:
            return dict(await housekeeping.retention(now))

        async def expire(now: datetime) -> dict[str, Any]:
            result: dict[str, Any] = dict(await housekeeping.expire_confirmations(now))
            # Then the prompts a stopped process never sent (or that nobody could get then).
            telegram = app.get(TELEGRAM)
            prompts = telegram.prompts if telegram is not None else None
            if prompts is not None:
                window = timedelta(hours=scheduler.confirmation_expiry_hours)
                result["prompted"] = await prompts.sweep(now, window=window)
            return result

        for job in (
            Job(JobName.BALANCE, scheduler.balance_check_seconds, self.monitor.check),
            Job(JobName.RECEIPTS, scheduler.receipt_poll_seconds, receipts),
            Job(JobName.EMAIL, scheduler.email_retry_seconds, email),
            Job(JobName.RETENTION, scheduler.housekeeping_seconds, retention),
            Job(JobName.EXPIRE_CONFIRMATIONS, scheduler.confirmation_check_seconds, expire),
        ):
            self._jobs[job.name.value] = job

    @property
    def jobs(self) -> dict[str, Job]:
        return dict(self._jobs)

    # ------------------------------------------------------------------ running

    @property
    def job_names(self) -> list[str]:
        return list(self._jobs)

    async def run_manually(self, name: str) -> ManualRun:
        """Run job `name` now, outside its schedule (`POST /api/v1/jobs/{name}/run`). It is
        recorded in `job_runs` under its own moment, so it neither takes nor waits for the
        scheduled slot."""
        now = utcnow()
        run = await self.run_job_now(name, now=now, slot=now)
        return ManualRun(job=name, ran=run.claimed, result=run.result, error=run.error)

    async def run_job_now(
        self, name: str, *, now: datetime | None = None, slot: datetime | None = None
    ) -> JobRunResult:
        """Claim the slot of `now` (default: the current time) for job `name` and, when
        this call got it, run the job. Job errors are logged and stored, never raised.
        `slot` overrides the claimed slot (manual runs)."""
        job = self._jobs[name]
        db = self._require_db()
        now = now or utcnow()
        slot = slot or slot_of(now, job.interval_seconds)
        try:
            async with db.transaction() as session:
                claimed = await jobs.claim_slot(
                    session, job=name, slot=slot, replica=self.replica_id, now=now
                )
        except Exception as exc:
            logger.warning("job %s: cannot claim slot %s: %s", name, slot, describe_db_error(exc))
            return JobRunResult(name, slot, claimed=False, error=describe_db_error(exc))
        if not claimed:
            logger.debug("job %s: slot %s already taken", name, slot.isoformat())
            return JobRunResult(name, slot, claimed=False)

        error: str | None = None
        try:
            result = await job.body(now)
        except Exception as exc:
            logger.exception("job %s (slot %s) failed", name, slot.isoformat())
            error = f"{type(exc).__name__}: {exc}"
            result = {"error": error}
        try:
            async with db.transaction() as session:
                await jobs.finish_run(
                    session, job=name, slot=slot, finished_at=utcnow(), result=result
                )
        except Exception as exc:
            logger.warning("job %s: cannot record the run: %s", name, describe_db_error(exc))
        return JobRunResult(name, slot, claimed=True, result=result, error=error)

    async def _tick(self, name: str) -> None:
        """What APScheduler calls at each interval."""
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            await self.run_job_now(name)
        finally:
            if task is not None:
                self._running.discard(task)

    def start(self) -> None:
        """Add every job with its interval trigger and start (needs the running loop)."""
        for job in self._jobs.values():
            self.aps.add_job(
                self._tick,
                IntervalTrigger(seconds=job.interval_seconds, timezone=UTC),
                args=[job.name.value],
                id=job.name.value,
                name=job.name.value,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=job.interval_seconds,
                replace_existing=True,
            )
        self.aps.start()
        logger.info(
            "scheduler started as %s: %s",
            self.replica_id,
            ", ".join(f"{job.name} every {job.interval_seconds} s" for job in self._jobs.values()),
        )

    async def stop(self) -> None:
        """Stop triggering, cancel running jobs and wait (briefly) for them to unwind."""
        if self.aps.running:
            self.aps.shutdown(wait=False)
        running = [task for task in self._running if not task.done()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=STOP_GRACE_SECONDS)
        # Let APScheduler's own shutdown (scheduled on the loop) run before the loop moves on.
        await asyncio.sleep(0)

    def _require_db(self) -> Database:
        if self._db is None:
            raise RuntimeError("the scheduler is not bound to a running app yet")
        return self._db


def setup_scheduler(app: web.Application, settings: Settings) -> None:
    """Add the scheduler's lifecycle to `app`; `app[SCHEDULER]` runs jobs on demand."""
    scheduler = AppScheduler(settings)
    app[SCHEDULER] = scheduler

    async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
        scheduler.bind(app)
        scheduler.start()
        try:
            yield
        finally:
            await scheduler.stop()

    app.cleanup_ctx.append(scheduler_ctx)
