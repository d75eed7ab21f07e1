"""Ingest benchmark: N signed ERP events at concurrency C against a Vestnik server.

Prints events/s and the p50/p90/p99 latency of `POST /api/v1/events`. A benchmark, not a
test: run it by hand.

    # against a server you started yourself
    python bench/ingest.py --url http://127.0.0.1:8080 --secret S -n 5000 -c 64
    # or let it start `vestnik serve` on a fresh database (SQLite file or PostgreSQL URL)
    python bench/ingest.py --spawn sqlite -n 5000 -c 64
    python bench/ingest.py --spawn postgresql+asyncpg://postgres@127.0.0.1/test -n 20000 -c 64
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


async def run(url: str, secret: str | None, total: int, concurrency: int, clients: int) -> int:
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
                headers = {"Content-Type": "application/json"}
                if secret:
                    headers[signature.HEADER] = signature.sign(secret, body)
                started = time.perf_counter()
                try:
                    async with session.post(
                        url + "/api/v1/events", data=body, headers=headers
                    ) as response:
                        await response.read()
                        statuses[response.status] += 1
                except aiohttp.ClientError as exc:
                    statuses[type(exc).__name__] += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started

    ok = statuses.get(202, 0)
    print(f"events:      {total} at concurrency {concurrency} ({clients} distinct clients)")
    print(f"statuses:    {dict(statuses)}")
    print(f"elapsed:     {elapsed:.2f} s")
    print(f"throughput:  {ok / elapsed:.0f} events/s accepted (202)")
    print("latency ms:  " + latency_line(latencies))
    return 0 if ok == total else 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def spawned_server(database: str, secret: str) -> AsyncIterator[str]:
    """`vestnik serve` on a fresh database; yields its base URL."""
    workdir = Path(tempfile.mkdtemp(prefix="vestnik-bench-"))
    admin_db: str | None = None
    if database == "sqlite":
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
            for _ in range(200):
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
        yield base_url
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
        if admin_db is not None:
            connection = await asyncpg.connect(admin_db)
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await connection.close()


async def main_async(args: argparse.Namespace) -> int:
    if args.spawn:
        secret = args.secret or "bench-webhook-secret"
        async with spawned_server(args.spawn, secret) as url:
            # Warm up: the first requests pay for imports and connection setup.
            await run(url, secret, min(200, args.events), min(16, args.concurrency), 50)
            print("-- measured run --")
            return await run(url, secret, args.events, args.concurrency, args.clients)
    return await run(args.url, args.secret, args.events, args.concurrency, args.clients)


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
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
