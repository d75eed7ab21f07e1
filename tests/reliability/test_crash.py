"""Crash: `kill -9` a `vestnik serve` mid-dispatch; after a restart nothing is lost and the
duplicates are no more than the deliveries in flight at the kill."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from tests.bulk import seed_pending
from tests.fakes.sms_http import FakeHttpGateway
from tests.reliability.conftest import JitteryGateway, count_by_status, free_port, spawn_serve

NOTIFICATIONS = 5000
KILL_AFTER = 1000
WORKERS = 8
LEASE_SECONDS = 5


def write_config(workdir: Path, gateway: FakeHttpGateway) -> None:
    (workdir / "vestnik.toml").write_text(
        f"""
[notify]
mode = "live"
service = "sms"

[webhook]
secret = "crash-test-webhook-secret"

[admin]
token = "crash-test-admin-token"

[delivery]
workers = {WORKERS}
lease_seconds = {LEASE_SECONDS}
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


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_kill_9_mid_dispatch_loses_nothing(database_url: str, tmp_path: Path) -> None:
    seeded = await seed_pending(database_url, count=NOTIFICATIONS)
    loop = asyncio.get_running_loop()
    gateway = JitteryGateway(0.005, 0.020, balance=Decimal(1_000_000))
    async with gateway:
        write_config(tmp_path, gateway)
        process = await spawn_serve(tmp_path, database_url, free_port())
        try:
            deadline = loop.time() + 120
            while len(gateway.sent) < KILL_AFTER:
                assert process.returncode is None, (tmp_path / "serve.log").read_text()
                assert loop.time() < deadline, len(gateway.sent)
                await asyncio.sleep(0.01)
            process.send_signal(signal.SIGKILL)
            await asyncio.wait_for(process.wait(), 10)
            sent_at_kill = len(gateway.sent)
            await asyncio.sleep(0.1)  # requests that were on the wire land at the fake
            at_kill = await count_by_status(database_url)
            in_flight = at_kill.get("sending", 0)

            process = await spawn_serve(tmp_path, database_url, free_port())
            deadline = loop.time() + 180
            while True:
                assert process.returncode is None, (tmp_path / "serve.log").read_text()
                assert loop.time() < deadline, await count_by_status(database_url)
                statuses = await count_by_status(database_url)
                if statuses.get("sent", 0) == NOTIFICATIONS:
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.0)  # a late double send would arrive by now
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), 20)

    sends = Counter(sms.client_id for sms in gateway.sent)
    seeded_ids = {str(nid) for nid in seeded.notification_ids}
    lost = seeded_ids - set(sends)
    duplicated = {nid: n for nid, n in sends.items() if n > 1}
    extra_sends = sum(n - 1 for n in duplicated.values())
    print(
        f"\nCRASH FIGURES: notifications={NOTIFICATIONS} sent_before_kill={sent_at_kill} "
        f"in_flight_at_kill={in_flight} (workers={WORKERS}) total_sends={len(gateway.sent)} "
        f"lost={len(lost)} duplicated_ids={len(duplicated)} extra_sends={extra_sends} "
        f"final={statuses}"
    )
    assert not lost
    assert set(sends) == seeded_ids
    assert statuses == {"sent": NOTIFICATIONS}
    assert extra_sends <= in_flight <= WORKERS
