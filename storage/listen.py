"""LISTEN on PostgreSQL through one dedicated asyncpg connection.

A pooled connection would lose the LISTEN when it goes back to the pool, so the listener
owns its own and reconnects when it drops (a database restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)

QUEUE_CHANNEL = "vestnik_queue"


def _setter(event: asyncio.Event) -> Callable[[Any], None]:
    return lambda _connection: event.set()


class Listener:
    def __init__(
        self, url: str, on_notify: Callable[[str], None], *, channel: str = QUEUE_CHANNEL
    ) -> None:
        """`on_notify` gets each notification's payload ("" when the listener (re)connects:
        whatever was notified meanwhile is not replayed, so everything may be due)."""
        parsed = make_url(url)
        self._dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self._on_notify = on_notify
        self._channel = channel
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="vestnik-listener")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self._on_notify(payload)

    async def _run(self) -> None:
        delay = 0.5
        while not self._stopping:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(self._dsn, timeout=5)
                lost = asyncio.Event()
                connection.add_termination_listener(_setter(lost))
                await connection.add_listener(self._channel, self._notified)
                delay = 0.5
                # Wake once: notifications sent while we were not listening are not replayed.
                self._on_notify("")
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), 30)
                    if not lost.is_set():
                        await connection.execute("SELECT 1")  # notice a dead peer
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("queue listener: %s; reconnecting in %.1f s", exc, delay)
            finally:
                if connection is not None and not connection.is_closed():
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=2)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
