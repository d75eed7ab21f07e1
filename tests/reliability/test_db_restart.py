"""Database restart: PostgreSQL really restarts while the ERP posts signed events at load.

Every event that got a 202 exists afterwards; requests during the outage get 503, never
500; the service recovers by itself. This restarts the machine's shared PostgreSQL cluster,
so it runs only by hand (`pytest -m slow`) and always leaves the server up.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from handlers.common import signature
from storage.database import create_database
from storage.models import Event
from tests.reliability.conftest import free_port, spawn_serve

SECRET = "db-restart-test-secret"
POSTERS = 8
SECONDS = 15.0
RESTART_AT = 4.0
CLUSTER = ("15", "main")


def event_body(event_id: str, n: int) -> bytes:
    event = {
        "event_id": event_id,
        "type": "client_order.ready",
        "occurred_at": "2026-11-27T10:15:00+03:00",
        "client": {"id": f"DR-{n % 500}", "name": f"Клиент {n % 500}", "phone": "+79161234567"},
        "document": {
            "kind": "client_order",
            "number": f"ЗК-{n:06d}",
            "date": "2026-11-27",
            "amount": 1500.0,
            "currency": "RUB",
        },
    }
    return json.dumps(event, ensure_ascii=False).encode()


def pg_ready() -> bool:
    return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"], check=False).returncode == 0


def ensure_pg_up(timeout: float = 60.0) -> None:
    """Wait for the server to answer; start it if it stays down (a failed restart)."""
    deadline = time.monotonic() + timeout
    while not pg_ready():
        if time.monotonic() > deadline:
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", *CLUSTER, "start"], check=False
            )
            deadline = time.monotonic() + timeout
        time.sleep(0.2)


async def stored_event_ids(url: str, candidates: list[str]) -> set[str]:
    db = create_database(url)
    found: set[str] = set()
    try:
        async with db.sessions() as session:
            for start in range(0, len(candidates), 1000):
                chunk = candidates[start : start + 1000]
                rows = await session.execute(
                    select(Event.event_id).where(Event.event_id.in_(chunk))
                )
                found.update(rows.scalars())
    finally:
        await db.dispose()
    return found


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_postgresql_restart_under_ingest_load(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "vestnik.toml").write_text(f'[webhook]\nsecret = "{SECRET}"\n', encoding="utf-8")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    loop = asyncio.get_running_loop()
    process = await spawn_serve(tmp_path, database_url, port)
    results: list[tuple[float, str, int | str]] = []  # (time since start, event_id, status)
    outage: list[float] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
            deadline = loop.time() + 30
            while True:
                assert process.returncode is None, (tmp_path / "serve.log").read_text()
                assert loop.time() < deadline, "vestnik serve did not get ready"
                try:
                    async with http.get(base + "/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)

            started = loop.time()
            counter = iter(range(10**9))

            async def poster() -> None:
                while loop.time() - started < SECONDS:
                    n = next(counter)
                    event_id = f"dbr-{uuid.uuid4().hex}"
                    body = event_body(event_id, n)
                    headers = {
                        "Content-Type": "application/json",
                        signature.HEADER: signature.sign(SECRET, body),
                    }
                    status: int | str
                    try:
                        async with http.post(
                            base + "/api/v1/events", data=body, headers=headers
                        ) as response:
                            await response.read()
                            status = response.status
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        status = type(exc).__name__
                    results.append((loop.time() - started, event_id, status))
                    if status != 202:
                        await asyncio.sleep(0.05)

            async def restart() -> None:
                await asyncio.sleep(RESTART_AT)
                outage.append(loop.time() - started)
                restarting = await asyncio.create_subprocess_exec(
                    "pg_ctlcluster", "--skip-systemctl-redirect", *CLUSTER, "restart"
                )
                assert await restarting.wait() == 0
                outage.append(loop.time() - started)

            await asyncio.gather(restart(), *(poster() for _ in range(POSTERS)))
        assert process.returncode is None, "vestnik serve died during the outage"
    finally:
        ensure_pg_up()
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 20)

    statuses = Counter(status for _, _, status in results)
    accepted = [event_id for _, event_id, status in results if status == 202]
    stored = await stored_event_ids(database_url, accepted)
    lost = set(accepted) - stored
    after = [status for at, _, status in results if at > outage[1] + 3.0]
    other = {k: v for k, v in statuses.items() if k not in (202, 503)}
    print(
        f"\nDB RESTART FIGURES: posted={len(results)} accepted_202={statuses[202]} "
        f"refused_503={statuses[503]} other={other} lost={len(lost)} "
        f"outage={outage[0]:.1f}-{outage[1]:.1f}s posts_after_recovery={len(after)} "
        f"(all 202: {all(s == 202 for s in after)})"
    )
    assert not lost
    assert not other, (tmp_path / "serve.log").read_text()[-5000:]
    assert after, "no post after the restart"
    assert all(status == 202 for status in after)
