"""Helpers of the reliability suites: a real `vestnik serve` subprocess, journal counts."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import sys
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, func, insert, select

from storage.database import create_database
from storage.models import Client, Notification, NotificationHistory, TelegramLink
from storage.types import utcnow
from tests.fakes.sms_http import FakeHttpGateway

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class JitteryGateway(FakeHttpGateway):
    """The fake `http` gateway with a random latency in [low, high] seconds per request."""

    def __init__(self, low: float, high: float, **kwargs: Any) -> None:
        self.low, self.high = low, high
        super().__init__(**kwargs)

    @property
    def latency(self) -> float:
        return random.uniform(self.low, self.high)

    @latency.setter
    def latency(self, value: float) -> None:
        """Ignored: the latency is the random range."""


async def spawn_serve(
    workdir: Path, database_url: str, port: int, *, log_level: str = "WARNING"
) -> asyncio.subprocess.Process:
    """`vestnik serve` in `workdir` (which holds vestnik.toml) on `port`."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "VESTNIK_DATABASE__URL": database_url,
        "VESTNIK_LOG__LEVEL": log_level,
    }
    with (workdir / "serve.log").open("ab") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "serve",
            "--port",
            str(port),
            cwd=workdir,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )


async def count_by_status(url: str) -> dict[str, int]:
    db = create_database(url)
    try:
        async with db.sessions() as session:
            rows = await session.execute(
                select(Notification.status, func.count()).group_by(Notification.status)
            )
            return {status: int(n) for status, n in rows.all()}
    finally:
        await db.dispose()


async def seed(url: str, *, prefix: str, count: int, chat_base: int | None = None) -> list[int]:
    """`count` due notifications for new clients `<prefix>-<i>`; with `chat_base`, each
    client has its own linked Telegram chat (chat_base + i), otherwise only a phone."""
    db = create_database(url)
    now = utcnow()
    try:
        async with db.transaction() as session:
            await session.execute(
                insert(cast(Table, Client.__table__)),
                [
                    {
                        "id": f"{prefix}-{i}",
                        "name": f"Клиент {i}",
                        "phone": f"+7917{i:07d}",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in range(count)
                ],
            )
            if chat_base is not None:
                await session.execute(
                    insert(cast(Table, TelegramLink.__table__)),
                    [
                        {
                            "chat_id": chat_base + i,
                            "user_id": chat_base + i,
                            "client_id": f"{prefix}-{i}",
                            "created_at": now,
                            "updated_at": now,
                        }
                        for i in range(count)
                    ],
                )
            table = cast(Table, Notification.__table__)
            result = await session.execute(
                insert(table).returning(table.c.id, sort_by_parameter_order=True),
                [
                    {
                        "event_type": "client_order.ready",
                        "recipient": "client",
                        "client_id": f"{prefix}-{i}",
                        "channel": "sms" if chat_base is None else "telegram",
                        "phone": f"+7917{i:07d}",
                        "status": "pending",
                        "text": f"Заказ №{prefix}-{i:06d} готов к выдаче.",
                        "next_attempt_at": now,
                        "queued_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in range(count)
                ],
            )
            ids = [row[0] for row in result]
            await session.execute(
                insert(cast(Table, NotificationHistory.__table__)),
                [
                    {
                        "notification_id": nid,
                        "at": now,
                        "from_status": None,
                        "to_status": "pending",
                        "actor": "test",
                    }
                    for nid in ids
                ],
            )
    finally:
        await db.dispose()
    return ids


def rss_bytes() -> int:
    """Resident set size of this process, from /proc (no psutil)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")
