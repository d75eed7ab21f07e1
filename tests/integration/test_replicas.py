"""Three `vestnik serve` processes on one PostgreSQL never send a notification twice."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage.database import create_database
from storage.models import Notification
from tests.bulk import seed_pending
from tests.fakes.sms_http import FakeHttpGateway

ROOT = Path(__file__).resolve().parents[2]
REPLICAS = 3
NOTIFICATIONS = 2000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_three_processes_send_two_thousand_notifications_exactly_once(
    database_url: str, tmp_path: Path
) -> None:
    seeded = await seed_pending(database_url, count=NOTIFICATIONS)
    async with FakeHttpGateway(balance=Decimal(1_000_000)) as gateway:
        (tmp_path / "vestnik.toml").write_text(
            f"""
[notify]
mode = "live"
service = "sms"

[webhook]
secret = "replica-test-webhook-secret"

[admin]
token = "replica-test-admin-token"

[delivery]
workers = 16
poll_seconds = 0.5

[[sms_services]]
name = "main"
kind = "http"
base_url = "{gateway.base_url}"
token = "{gateway.token}"
rate_per_second = 100000
""",
            encoding="utf-8",
        )
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "VESTNIK_DATABASE__URL": database_url,
            "VESTNIK_LOG__LEVEL": "WARNING",
        }
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot.cli",
                "serve",
                "--port",
                str(free_port()),
                cwd=tmp_path,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(REPLICAS)
        ]
        try:
            deadline = asyncio.get_running_loop().time() + 120
            while len(gateway.sent) < NOTIFICATIONS:
                assert asyncio.get_running_loop().time() < deadline, len(gateway.sent)
                for process in processes:
                    assert process.returncode is None, await process.stderr.read()  # type: ignore[union-attr]
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # any double send would arrive by now
        finally:
            for process in processes:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
            codes = [await asyncio.wait_for(process.wait(), 20) for process in processes]

    sent_ids = [sms.client_id for sms in gateway.sent]
    assert len(sent_ids) == NOTIFICATIONS
    assert len(set(sent_ids)) == NOTIFICATIONS
    assert set(sent_ids) == {str(nid) for nid in seeded.notification_ids}
    assert codes == [0] * REPLICAS
    assert await count_by_status(database_url) == {"sent": NOTIFICATIONS}
