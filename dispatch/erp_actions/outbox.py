"""Delivering the presses to `erp.callback_url`: the outbox of `erp_action_presses`.

A press is stored first (the client is answered after that) and POSTed from here, signed
like the ERP's own webhook calls (`X-Vestnik-Signature`, secret `erp.callback_secret`). A
press stays `pending` until the ERP answers 2xx; each failure waits twice as long as the one
before (`retry_base_seconds` up to `retry_cap_seconds`), and it is tried for as long as it
takes: the rows survive restarts and crashes, so a press is delivered at least once.

As with the e-mail outbox (`dispatch.ops.email`), one flush at a time: an asyncio lock in
the process and, on PostgreSQL, an advisory lock across replicas, so a press is not posted
twice by two replicas at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp

from dispatch.config import ErpSettings
from storage.actions import presses
from storage.database import Database, describe_db_error
from storage.ops import alerts
from storage.types import utcnow

logger = logging.getLogger(__name__)

# pg_try_advisory_xact_lock key of this outbox ("vestnik-erpcb" folded into a bigint).
OUTBOX_LOCK_KEY = 0x76657374_65727063
FLUSH_BATCH = 20
_ERROR_LIMIT = 500

Signer = Callable[[str, bytes], str]
"""`sign(secret, body)` → the signature header's value (handed in by the shell)."""


@dataclass(frozen=True, slots=True)
class PressFlush:
    delivered: int = 0
    failed: int = 0
    busy: bool = False


class ErpOutbox:
    """Posts due presses; `run()` is its loop (woken by a press, else every poll)."""

    def __init__(
        self,
        settings: ErpSettings,
        *,
        db: Database,
        sign: Signer,
        header: str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        assert settings.callback_url and settings.callback_secret
        self._settings = settings
        self._url = settings.callback_url
        self._secret = settings.callback_secret
        self._db = db
        self._sign = sign
        self._header = header
        self._clock = clock
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None

    def wake(self) -> None:
        self._wake.set()

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed try (1, 2, …)."""
        settings = self._settings
        seconds = settings.retry_base_seconds * 2 ** min(attempts - 1, 30)
        return timedelta(seconds=min(seconds, settings.retry_cap_seconds))

    def start(self) -> None:
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._settings.timeout_seconds)
        )
        self._task = asyncio.create_task(self._run(), name="erp-callbacks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                result = await self.flush()
            except Exception as exc:  # the database is away: the next round tries again
                logger.warning("erp callbacks: flush failed: %s", describe_db_error(exc))
            else:
                if result.delivered + result.failed >= FLUSH_BATCH:
                    continue  # a backlog: the next batch at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.poll_seconds)

    async def flush(self) -> PressFlush:
        """Post every due press (oldest first); never raises for the ERP's trouble."""
        async with self._lock:
            if self._db.dialect != "postgresql":
                return await self._flush_rows()
            async with self._db.sessions() as guard, guard.begin():
                if not await alerts.try_outbox_lock(guard, OUTBOX_LOCK_KEY):
                    return PressFlush(busy=True)
                return await self._flush_rows()

    async def _flush_rows(self) -> PressFlush:
        async with self._db.sessions() as session:
            rows = await presses.due(session, now=self._clock(), limit=FLUSH_BATCH)
        delivered = failed = 0
        for row in rows:
            error = await self._post(row.body)
            now = self._clock()
            async with self._db.transaction() as session:
                if error is None:
                    await presses.mark_delivered(session, row.id, now=now)
                else:
                    await presses.mark_failed(
                        session,
                        row.id,
                        error=error,
                        next_attempt_at=now + self.backoff(row.attempts + 1),
                    )
            if error is None:
                delivered += 1
                logger.info(
                    "erp press #%s (%s) delivered after %d attempt(s)",
                    row.id,
                    row.action,
                    row.attempts + 1,
                )
            else:
                failed += 1
                logger.warning(
                    "erp press #%s (%s) not taken (attempt %d): %s",
                    row.id,
                    row.action,
                    row.attempts + 1,
                    error,
                )
        return PressFlush(delivered=delivered, failed=failed)

    async def _post(self, body: object) -> str | None:
        """None when the ERP took it (2xx), else why not."""
        assert self._http is not None, "start() first"
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            self._header: self._sign(self._secret, raw),
        }
        try:
            async with self._http.post(self._url, data=raw, headers=headers) as response:
                if 200 <= response.status < 300:
                    return None
                text = (await response.text(errors="replace")).strip()
                return f"HTTP {response.status}: {text}"[:_ERROR_LIMIT]
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"[:_ERROR_LIMIT]
