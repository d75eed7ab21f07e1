"""Ingest benchmark: N signed ERP events at concurrency C against a Vestnik server.

Prints events/s and the p50/p90/p99 latency of `POST /api/v1/events`. On PostgreSQL it also
measures, in the same run and on the same server, the ceiling issue 13 compares the service
with: a pgbench-equivalent through asyncpg, one transaction per event doing what one event
costs (1 event row + 2 notification rows + 2 history rows, into scratch tables shaped like
ours), at the same concurrency; then it prints the ratio service / ceiling. On SQLite it
prints the absolute figure against the issue's target (1,000 events/s) and no ceiling: one
writer and one transaction per event there measures the disk's fsync, not anything the
service could beat. A benchmark, not a test: run it by hand.

    # against a server you started yourself
    python bench/ingest.py --url http://127.0.0.1:8080 --secret S -n 5000 -c 64
    # or let it start `vestnik serve` on a fresh database (SQLite file or PostgreSQL URL)
    python bench/ingest.py --spawn sqlite -n 5000 -c 64
    python bench/ingest.py --spawn postgresql+asyncpg://postgres@127.0.0.1/test -n 20000 -c 64
    # the same with two server processes on the port (`vestnik serve --workers 2`)
    python bench/ingest.py --spawn postgresql+asyncpg://postgres@127.0.0.1/test --workers 2
    # against your own server, with the ceiling measured on a PostgreSQL database you name
    python bench/ingest.py --url http://127.0.0.1:8080 --secret S --ceiling postgresql://…
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from handlers.common import signature  # noqa: E402 - after the sys.path line above

TYPES = (
    "client_order.ready",
    "client_order.posted",
    "payment.registered",
    "vin_request.posted",
    "supplier_refusal.posted_by_order",
)


def make_body(index: int, clients: int) -> bytes:
    client = index % clients
    event = {
        "event_id": f"bench-{uuid.uuid4().hex}",
        "type": TYPES[index % len(TYPES)],
        "occurred_at": "2026-11-27T10:15:00+03:00",
        "client": {
            "id": f"BC-{client}",
            "name": f"Клиент {client}",
            "phone": f"+7916{client % 10_000_000:07d}",
            "manager_id": f"BM-{client % 20}",
        },
        "manager": {"id": f"BM-{client % 20}", "name": "Менеджер", "phone": "+79031234567"},
        "document": {
            "kind": "client_order",
            "number": f"ЗК-{index:06d}",
            "date": "2026-11-27",
            "amount": round(random.uniform(100, 100_000), 2),
            "currency": "RUB",
            "lines": [{"article": "OC90", "name": "Фильтр масляный", "quantity": 1}],
        },
    }
    return json.dumps(event, ensure_ascii=False).encode()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_line(seconds: list[float]) -> str:
    """p50/p90/p99/mean in milliseconds."""
    figures = [percentile(seconds, q) * 1000 for q in (0.5, 0.9, 0.99)]
    mean = statistics.fmean(seconds) * 1000
    return "p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  mean {:.1f}".format(*figures, mean)


@dataclass
class Result:
    """One measured run: what was asked, what came back, how long it took."""

    total: int
    ok: int
    elapsed: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0


async def post_event(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    secret: str | None,
    statuses: Counter[int | str],
) -> None:
    """POST one event as the ERP would (signed when `secret` is given); count its answer."""
    headers = {"Content-Type": "application/json"}
    if secret:
        headers[signature.HEADER] = signature.sign(secret, body)
    try:
        async with session.post(url + "/api/v1/events", data=body, headers=headers) as response:
            await response.read()
            statuses[response.status] += 1
    except aiohttp.ClientError as exc:
        statuses[type(exc).__name__] += 1


async def run(
    url: str,
    secret: str | None,
    total: int,
    concurrency: int,
    clients: int,
    *,
    quiet: bool = False,
) -> Result:
    bodies = [make_body(i, clients) for i in range(total)]
    latencies: list[float] = []
    statuses: Counter[int | str] = Counter()
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                await post_event(session, url, body, secret, statuses)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started

    result = Result(total, statuses.get(202, 0), elapsed, latencies)
    if not quiet:
        print(f"events:      {total} at concurrency {concurrency} ({clients} distinct clients)")
        print(f"statuses:    {dict(statuses)}")
        print(f"elapsed:     {elapsed:.2f} s")
        print(f"throughput:  {result.rate:.0f} events/s accepted (202)")
        print("latency ms:  " + latency_line(latencies))
    return result


# The ceiling's scratch tables: the columns and indexes of events, notifications and
# notification_history (storage/models.py) that one event's insert touches, so that the
# database does the same work per row; prefixed so they never meet the real ones.
SCRATCH_DDL = (
    "DROP TABLE IF EXISTS bench_history, bench_notifications, bench_events",
    """CREATE TABLE bench_events (
        id BIGSERIAL PRIMARY KEY, event_id VARCHAR(128) UNIQUE NOT NULL,
        type VARCHAR(64) NOT NULL, occurred_at TIMESTAMPTZ, received_at TIMESTAMPTZ NOT NULL,
        client_id VARCHAR(64), payload JSONB NOT NULL)""",
    "CREATE INDEX ON bench_events (received_at)",
    """CREATE TABLE bench_notifications (
        id BIGSERIAL PRIMARY KEY, event_pk BIGINT REFERENCES bench_events (id) ON DELETE CASCADE,
        event_type VARCHAR(64) NOT NULL, recipient VARCHAR(16) NOT NULL,
        client_id VARCHAR(64), manager_id VARCHAR(64), channel VARCHAR(16), phone VARCHAR(32),
        status VARCHAR(32) NOT NULL, text TEXT, encoding VARCHAR(8), units INTEGER,
        segments INTEGER, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TIMESTAMPTZ,
        queued_at TIMESTAMPTZ, provider VARCHAR(64), provider_message_id VARCHAR(128),
        created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL)""",
    """CREATE INDEX ON bench_notifications (next_attempt_at)
        WHERE status IN ('pending', 'sending')""",
    "CREATE INDEX ON bench_notifications (event_pk)",
    "CREATE INDEX ON bench_notifications (status, id)",
    "CREATE INDEX ON bench_notifications (client_id, id)",
    "CREATE INDEX ON bench_notifications (provider, provider_message_id)",
    """CREATE TABLE bench_history (
        id BIGSERIAL PRIMARY KEY,
        notification_id BIGINT NOT NULL REFERENCES bench_notifications (id) ON DELETE CASCADE,
        at TIMESTAMPTZ NOT NULL, from_status VARCHAR(32), to_status VARCHAR(32) NOT NULL,
        actor VARCHAR(128) NOT NULL, reason TEXT, channel VARCHAR(16))""",
    "CREATE INDEX ON bench_history (notification_id, id)",
)
INSERT_EVENT = """INSERT INTO bench_events
    (event_id, type, occurred_at, received_at, client_id, payload)
    VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING id"""
INSERT_NOTIFICATION = """INSERT INTO bench_notifications
    (event_pk, event_type, recipient, client_id, manager_id, channel, phone, status, text,
     encoding, units, segments, next_attempt_at, queued_at, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, 'sms', $6, 'test', $7, 'UCS-2', 1, 1, NULL, $8, $8, $8)
    RETURNING id"""
INSERT_HISTORY = """INSERT INTO bench_history (notification_id, at, from_status, to_status,
    actor, channel) VALUES ($1, $2, NULL, 'test', 'system', 'sms')"""


def plain_postgres_url(url: str) -> str:
    """The asyncpg form of a SQLAlchemy or plain PostgreSQL URL."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def ceiling(database_url: str, total: int, concurrency: int, clients: int) -> Result:
    """The pgbench-equivalent: one transaction per event, C connections, N transactions.

    Five prepared INSERTs in one transaction (asyncpg caches the prepared statements per
    connection, as pgbench -M prepared does); no Python beyond building the arguments.
    """
    import asyncpg

    dsn = plain_postgres_url(database_url)
    setup = await asyncpg.connect(dsn)
    try:
        for statement in SCRATCH_DDL:
            await setup.execute(statement)
    finally:
        await setup.close()
    payloads = [make_body(i, clients).decode() for i in range(total)]
    latencies: list[float] = []
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for item in enumerate(payloads):
        queue.put_nowait(item)
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    try:

        async def worker() -> None:
            async with pool.acquire() as connection:
                while not queue.empty():
                    index, payload = queue.get_nowait()
                    now = datetime.now(UTC)
                    client = f"BC-{index % clients}"
                    started = time.perf_counter()
                    async with connection.transaction():
                        event_pk = await connection.fetchval(
                            INSERT_EVENT,
                            f"ceiling-{uuid.uuid4().hex}",
                            TYPES[index % len(TYPES)],
                            now,
                            now,
                            client,
                            payload,
                        )
                        for recipient, phone in (
                            ("client", "+79161234567"),
                            ("manager", "+79031234567"),
                        ):
                            notification = await connection.fetchval(
                                INSERT_NOTIFICATION,
                                event_pk,
                                TYPES[index % len(TYPES)],
                                recipient,
                                client,
                                "BM-1",
                                phone,
                                "Заказ ЗК-000001 готов к выдаче. Ждём вас!",
                                now,
                            )
                            await connection.execute(INSERT_HISTORY, notification, now)
                    latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        await pool.close()
        cleanup = await asyncpg.connect(dsn)
        try:
            await cleanup.execute(SCRATCH_DDL[0])
        finally:
            await cleanup.close()
    return Result(total, total, elapsed, latencies)


def print_ceiling(service: Result, limit: Result, concurrency: int) -> None:
    print(
        f"ceiling:     {limit.rate:.0f} tx/s — one asyncpg transaction per event "
        f"(1 event + 2 notifications + 2 history rows), {limit.total} tx at concurrency "
        f"{concurrency}, same PostgreSQL"
    )
    print("ceiling ms:  " + latency_line(limit.latencies))
    print(
        f"ratio:       {service.rate / limit.rate:.2f} (service {service.rate:.0f} events/s "
        f"/ ceiling {limit.rate:.0f} tx/s; issue 13 goal >= 1.00)"
    )


def print_sqlite_target(service: Result) -> None:
    # No ceiling on SQLite (see the module docstring): the absolute figure and the target.
    print(
        f"target:      SQLite, no ceiling measured: {service.rate:.0f} events/s against "
        f"the issue 13 goal of >= 1,000 events/s ({service.rate / 1000:.2f}x)"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Spawned:
    """A `vestnik serve` started by this script."""

    base_url: str
    database_url: str
    """The SQLAlchemy URL of its fresh database."""
    pid: int


@asynccontextmanager
async def spawned_server(
    database: str, secret: str, extra_env: dict[str, str] | None = None
) -> AsyncIterator[Spawned]:
    """`vestnik serve` on a fresh database (dropped after); `extra_env` adds settings."""
    workdir = Path(tempfile.mkdtemp(prefix="vestnik-bench-"))
    admin_db: str | None = None
    if database.startswith("sqlite"):
        # 'sqlite' or any SQLite URL: always a fresh file in the scratch folder.
        url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    else:
        import asyncpg
        from sqlalchemy.engine import make_url

        name = f"vestnik_bench_{uuid.uuid4().hex[:8]}"
        base = make_url(database)
        admin_db = base.set(drivername="postgresql").render_as_string(hide_password=False)
        connection = await asyncpg.connect(admin_db)
        await connection.execute(f'CREATE DATABASE "{name}"')
        await connection.close()
        url = base.set(database=name).render_as_string(hide_password=False)
    port = free_port()
    env = {
        **os.environ,
        "VESTNIK_DATABASE__URL": url,
        "VESTNIK_HTTP__PORT": str(port),
        "VESTNIK_WEBHOOK__SECRET": secret,
        "VESTNIK_LOG__LEVEL": "WARNING",
        **(extra_env or {}),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "serve",
        cwd=workdir,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):  # importing aiogram alone may take ~9 s on a busy machine
                try:
                    async with session.get(base_url + "/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the spawned server did not become ready")
        print(f"server:      vestnik serve on {database.split('://')[0]} (pid {process.pid})")
        yield Spawned(base_url, url, process.pid)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
        if admin_db is not None:
            connection = await asyncpg.connect(admin_db)
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await connection.close()


async def measured(
    url: str, secret: str | None, args: argparse.Namespace, ceiling_database: str | None
) -> int:
    """The measured run, then the ceiling (PostgreSQL) or the target (SQLite)."""
    service = await run(url, secret, args.events, args.concurrency, args.clients)
    if ceiling_database is not None and not args.no_ceiling:
        if ceiling_database.startswith("sqlite"):
            print_sqlite_target(service)
        else:
            # After the service's run, with the server idle, on the same PostgreSQL server.
            limit = await ceiling(ceiling_database, args.events, args.concurrency, args.clients)
            print_ceiling(service, limit, args.concurrency)
    return 0 if service.ok == service.total else 1


async def main_async(args: argparse.Namespace) -> int:
    if args.spawn:
        secret = args.secret or "bench-webhook-secret"
        extra = {"VESTNIK_HTTP__PROCESSES": str(args.workers)}
        async with spawned_server(args.spawn, secret, extra) as server:
            if args.workers > 1:
                print(f"processes:   {args.workers} (serve --workers, SO_REUSEPORT)")
            # Warm up: the first requests pay for imports and connection setup.
            await run(
                server.base_url, secret, min(200, args.events), min(16, args.concurrency), 50
            )
            print("-- measured run --")
            return await measured(server.base_url, secret, args, server.database_url)
    return await measured(args.url, args.secret, args, args.ceiling)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--secret", default=os.environ.get("VESTNIK_WEBHOOK__SECRET"))
    parser.add_argument("-n", "--events", type=int, default=2000)
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("--clients", type=int, default=1000, help="distinct clients")
    parser.add_argument(
        "--spawn",
        metavar="DATABASE",
        help="start `vestnik serve` on a fresh database: 'sqlite' or a PostgreSQL URL",
    )
    parser.add_argument(
        "--ceiling",
        metavar="DATABASE",
        help="with --url: the PostgreSQL URL to measure the ceiling on (scratch tables "
        "bench_*, dropped after); 'sqlite' prints the SQLite target instead",
    )
    parser.add_argument(
        "--no-ceiling", action="store_true", help="skip the ceiling (the service's run only)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="with --spawn: server processes sharing the port (`serve --workers N`)",
    )
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
