"""Soak benchmark: the server's memory under a steady ingest load, over time.

Starts `vestnik serve` (test mode, the default with no configuration: every event is stored,
rendered and journaled, nothing is sent) on a fresh database, posts signed ERP events at a
steady rate for `--seconds`, and prints the server process's RSS (VmRSS from
/proc/<pid>/status) every `--interval` seconds. Then the import floor (the RSS of a process
that only imports the app), the peak above that floor (issue 13's goal: <= 60 MB) and the
growth from the first sample under load to the last (the goal: flat). Linux only (/proc).
A benchmark, not a test: run it by hand; it exits 0 unless an event was refused.

    python bench/soak.py --seconds 600
    python bench/soak.py --database postgresql+asyncpg://postgres@127.0.0.1/test --rate 200
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import make_body, post_event, spawned_server  # noqa: E402

SECRET = "bench-webhook-secret"
# What a process that only imports the app prints: its own VmRSS in kB.
FLOOR_SCRIPT = """
import bot.app  # create_app and everything it wires: aiohttp, aiogram, SQLAlchemy, Jinja2
for line in open("/proc/self/status"):
    if line.startswith("VmRSS:"):
        print(line.split()[1])
"""


def rss_mb(pid: int) -> float:
    """The resident set of a process, in MB (VmRSS is in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def import_floor_mb() -> float:
    """RSS of a fresh interpreter after `import bot.app`, in MB."""
    output = subprocess.run(
        [sys.executable, "-c", FLOOR_SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(output.split()[-1]) / 1024


async def load(url: str, rate: float, concurrency: int, stop_at: float) -> Counter[int | str]:
    """POST events at `rate` per second until `stop_at`; at most `concurrency` in flight.

    Paced against the start time, so a slow reply delays the next send, never the schedule:
    the load stays steady unless the server falls behind by more than `concurrency`.
    """
    statuses: Counter[int | str] = Counter()
    slots = asyncio.Semaphore(concurrency)
    tasks: set[asyncio.Task[None]] = set()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(index: int) -> None:
            try:
                await post_event(session, url, make_body(index, 1000), SECRET, statuses)
            finally:
                slots.release()

        started = time.perf_counter()
        index = 0
        while (now := time.perf_counter()) < stop_at:
            due = started + index / rate
            if due > now:
                await asyncio.sleep(due - now)
            await slots.acquire()
            task = asyncio.create_task(post(index))
            tasks.add(task)  # a strong reference until it is done
            task.add_done_callback(tasks.discard)
            index += 1
        if tasks:
            await asyncio.gather(*tasks)
    return statuses


async def sample(pid: int, interval: float, stop_at: float, started: float) -> list[float]:
    """RSS every `interval` seconds until `stop_at`, printed as it is taken."""
    samples: list[float] = []
    while True:
        value = rss_mb(pid)
        samples.append(value)
        print(
            f"rss:         t={time.perf_counter() - started:5.0f} s  {value:6.1f} MB", flush=True
        )
        remaining = stop_at - time.perf_counter()
        if remaining <= 0.5:
            return samples
        await asyncio.sleep(min(interval, remaining))


async def main_async(args: argparse.Namespace) -> int:
    floor = import_floor_mb()
    async with spawned_server(args.database, SECRET) as server:
        idle = rss_mb(server.pid)
        print(f"idle:        {idle:.1f} MB after start-up, before any event")
        print(
            f"load:        {args.rate:g} events/s, at most {args.concurrency} in flight, "
            f"{args.seconds:g} s (test mode)"
        )
        started = time.perf_counter()
        stop_at = started + args.seconds
        statuses, samples = await asyncio.gather(
            load(server.base_url, args.rate, args.concurrency, stop_at),
            sample(server.pid, args.interval, stop_at, started),
        )
        elapsed = time.perf_counter() - started
        final = rss_mb(server.pid)
    total = sum(statuses.values())
    accepted = statuses.get(202, 0)
    print(f"statuses:    {dict(statuses)} ({accepted / elapsed:.0f} events/s accepted)")
    print(f"import floor: {floor:.1f} MB (a process that only imports bot.app)")
    peak = max([*samples, final])
    print(
        f"peak:        {peak:.1f} MB = floor + {peak - floor:.1f} MB "
        f"(issue 13 goal: <= floor + 60 MB)"
    )
    # Growth from the first sample taken under load, so start-up allocations do not count.
    first = samples[1] if len(samples) > 1 else samples[0]
    print(
        f"growth:      {final - first:+.1f} MB from the first sample under load to the end "
        f"({first:.1f} -> {final:.1f} MB; goal: flat)"
    )
    return 0 if accepted == total else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database", default="sqlite", help="'sqlite' (a fresh file) or a PostgreSQL URL"
    )
    parser.add_argument("--seconds", type=float, default=600, help="duration of the load")
    parser.add_argument("--rate", type=float, default=100, help="events per second")
    parser.add_argument("-c", "--concurrency", type=int, default=16, help="at most in flight")
    parser.add_argument("--interval", type=float, default=10, help="seconds between samples")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
