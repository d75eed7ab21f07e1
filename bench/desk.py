"""Desk benchmark: how long the web desk's pages take with a full journal.

Starts `vestnik serve` on a fresh database, writes N notifications (default 10,000) with
their ERP events (each naming its document) and history straight into it, signs in as the
admin, and GETs the pages one at a time, as a person at a desk would. Prints p50/p90/p99
per page: the journal's first page, the journal filtered by status, by document number,
a notification's card, the settings form, the event types' table and a template editor
(its preview rendered on the sample event). A benchmark, not a test: run it by hand.

    python bench/desk.py --spawn sqlite
    python bench/desk.py --spawn postgresql+asyncpg://postgres@127.0.0.1/test -n 10000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import latency_line, spawned_server  # noqa: E402
from storage.database import create_database  # noqa: E402
from storage.models import (  # noqa: E402
    Client,
    Event,
    Manager,
    Notification,
    NotificationHistory,
)
from storage.types import utcnow  # noqa: E402

ADMIN_TOKEN = "bench-admin-token-0001"
SECRET = "bench-webhook-secret"
STATUSES = ("sent", "delivered", "sent", "failed", "awaiting_confirmation", "cancelled")
BATCH = 1000


async def seed(url: str, count: int) -> None:
    """`count` notifications of 500 clients and 20 managers, one ERP event each."""
    db = create_database(url)
    now = utcnow()
    try:
        async with db.transaction() as session:
            await session.execute(
                insert(Manager.__table__),
                [
                    {
                        "id": f"BM-{m}",
                        "name": f"Менеджер {m}",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for m in range(20)
                ],
            )
            await session.execute(
                insert(Client.__table__),
                [
                    {
                        "id": f"BC-{c}",
                        "name": f"Клиент {c}",
                        "phone": f"+7916{c:07d}",
                        "manager_id": f"BM-{c % 20}",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for c in range(500)
                ],
            )
            for start in range(0, count, BATCH):
                indexes = range(start, min(count, start + BATCH))
                at = [now - timedelta(seconds=count - i) for i in indexes]
                events = await session.execute(
                    insert(Event.__table__).returning(
                        Event.__table__.c.id, sort_by_parameter_order=True
                    ),
                    [
                        {
                            "event_id": f"bench-{i}",
                            "type": "client_order.ready",
                            "received_at": when,
                            "client_id": f"BC-{i % 500}",
                            "payload": {
                                "document": {"kind": "client_order", "number": f"ЗК-{i:06d}"},
                                "lines": [{"name": "Фильтр масляный", "quantity": 1}] * 5,
                            },
                        }
                        for i, when in zip(indexes, at, strict=True)
                    ],
                )
                event_pks = [row[0] for row in events]
                rows = await session.execute(
                    insert(Notification.__table__).returning(
                        Notification.__table__.c.id, sort_by_parameter_order=True
                    ),
                    [
                        _notification(i, pk, when)
                        for i, pk, when in zip(indexes, event_pks, at, strict=True)
                    ],
                )
                await session.execute(
                    insert(NotificationHistory.__table__),
                    [
                        {
                            "notification_id": nid,
                            "at": when,
                            "from_status": None,
                            "to_status": STATUSES[i % len(STATUSES)],
                            "actor": "bench",
                        }
                        for (nid,), i, when in zip(rows, indexes, at, strict=True)
                    ],
                )
    finally:
        await db.dispose()


def _notification(i: int, event_pk: int, when: Any) -> dict[str, Any]:
    return {
        "event_pk": event_pk,
        "event_type": "client_order.ready",
        "recipient": "client",
        "client_id": f"BC-{i % 500}",
        "manager_id": f"BM-{i % 500 % 20}",
        "channel": "sms",
        "phone": f"+7916{i % 500:07d}",
        "status": STATUSES[i % len(STATUSES)],
        "text": f"Заказ №ЗК-{i:06d} готов к выдаче. Ждём вас!",
        "encoding": "ucs2",
        "units": 40,
        "segments": 1,
        "created_at": when,
        "updated_at": when,
    }


async def timed(session: aiohttp.ClientSession, url: str, requests: int) -> list[float]:
    seconds = []
    for _ in range(requests):
        started = time.perf_counter()
        async with session.get(
            url, headers={"Accept": "text/html"}, allow_redirects=False
        ) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {url}: {response.status}")
        seconds.append(time.perf_counter() - started)
    return seconds


async def main_async(args: argparse.Namespace) -> int:
    extra = {"VESTNIK_ADMIN__TOKEN": ADMIN_TOKEN, "VESTNIK_SCHEDULER__ENABLED": "false"}
    async with spawned_server(args.spawn, SECRET, extra) as server:
        started = time.perf_counter()
        await seed(server.database_url, args.notifications)
        print(
            f"journal:     {args.notifications} notifications written in "
            f"{time.perf_counter() - started:.1f} s"
        )
        # unsafe: keep the session cookie of a server addressed by IP (127.0.0.1).
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.post(
                server.base_url + "/desk/signin", data={"token": ADMIN_TOKEN}
            ) as response:
                if response.url.path != "/desk/journal":
                    raise RuntimeError(f"sign-in failed: {response.status}")
            middle = args.notifications // 2
            pages = {
                "journal, first page": "/desk/journal",
                "journal, status=failed": "/desk/journal?status=failed",
                "journal, document number": f"/desk/journal?number=ЗК-{middle:06d}",
                "notification card": f"/desk/notifications/{middle}",
                "settings": "/desk/settings",
                "event types": "/desk/event-types",
                "template editor": "/desk/event-types/client_order.ready/client",
            }
            for name, path in pages.items():
                await timed(session, server.base_url + path, 5)  # warm-up
                seconds = await timed(session, server.base_url + path, args.requests)
                print(f"{name + ':':28} {latency_line(seconds)}  (ms, {args.requests} GETs)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--spawn",
        metavar="DATABASE",
        default="sqlite",
        help="start `vestnik serve` on a fresh database: 'sqlite' or a PostgreSQL URL",
    )
    parser.add_argument("-n", "--notifications", type=int, default=10_000)
    parser.add_argument("-r", "--requests", type=int, default=200, help="GETs per page")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
