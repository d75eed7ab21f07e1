"""`vestnik serve --workers N`: N server processes sharing one listening port.

One Python process is CPU-bound at about one core (bench/ingest.py); the processes here
each bind the same address with SO_REUSEPORT, so the kernel spreads incoming connections
over them and ingest scales with the cores. Everything that must happen once is already
safe with several processes, as it is with several replicas: the scheduled jobs take slot
claims in the database, the delivery workers lease rows, PostgreSQL's NOTIFY wakes every
process. Two things are per process and are arranged here:

- the Telegram long-polling loop: Telegram answers a second concurrent getUpdates with
  409 Conflict, so only process 0 polls (every process sends, and in webhook mode every
  process takes webhook calls);
- the send-rate limits (Telegram's per bot, each SMS service's): each process gets its
  share, 1/N of the configured rate.

The parent forks the processes after the settings are checked and the schema is migrated
(once, here), forwards SIGINT/SIGTERM to them, and starts a process again if one dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from sqlalchemy.engine import make_url

from bot.cli.errors import EXIT_USAGE, CliError
from bot.errors import BotError
from bot.settings import Settings

logger = logging.getLogger(__name__)

EXIT_START_FAILED = 3
"""A process that could not start (port taken, database refused): starting it again would
fail the same way, so the parent stops them all."""
RESTART_DELAY_SECONDS = 1.0
STOP_MARGIN_SECONDS = 10.0
"""Added to the delivery grace period before a process that would not stop is killed."""


def process_settings(settings: Settings, count: int) -> Settings:
    """The settings of one of `count` processes: the send rates shared out among them."""
    if count == 1:
        return settings
    delivery = settings.delivery.model_copy(
        update={"telegram_per_second": settings.delivery.telegram_per_second / count}
    )
    services = [
        service.model_copy(update={"rate_per_second": service.rate_per_second / count})
        for service in settings.sms_services
    ]
    # `http.processes` = count: what tells the app to share out the stored SMS services'
    # rates too (bot/app.py).
    http = settings.http.model_copy(update={"processes": count})
    return settings.model_copy(
        update={"delivery": delivery, "sms_services": services, "http": http}
    )


def check_workers(settings: Settings, count: int, *, sandbox: bool = False) -> None:
    """Refuse the combinations that cannot work, with the fix."""
    if count == 1:
        return
    if make_url(settings.database.url).get_backend_name() != "postgresql":
        raise CliError(
            f"--workers {count} needs PostgreSQL: SQLite has one writer, so more processes "
            "only wait for each other (set database.url to postgresql+asyncpg://…)",
            EXIT_USAGE,
        )
    if sandbox:
        raise CliError("--workers cannot be combined with --sandbox", EXIT_USAGE)


def _child(settings: Settings, index: int, config_file: Path | None) -> None:
    from bot.cli.serve import serve

    # The parent handles Ctrl-C for the group; a child stops on the SIGTERM it forwards
    # (serve installs its own handlers once its loop runs).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        asyncio.run(
            serve(
                settings,
                config_file=config_file,
                migrate=False,
                reuse_port=True,
                poll_telegram=index == 0,
                banner=index == 0,
            )
        )
    except BotError as exc:  # ServeError, or a database mistake: one line, as `serve` does
        print(f"vestnik: {exc}", file=sys.stderr, flush=True)
        sys.exit(EXIT_START_FAILED)


def _migrate(settings: Settings) -> None:
    from storage import migrate
    from storage.database import create_database

    async def run() -> None:
        db = create_database(settings.database.url)
        try:
            await migrate.upgrade(db)
        finally:
            await db.dispose()

    asyncio.run(run())


def run_workers(
    settings: Settings, *, count: int, config_file: Path | None, migrate: bool
) -> None:
    """Run `count` server processes until SIGINT/SIGTERM; restart any that dies."""
    if migrate:
        _migrate(settings)
    shared = process_settings(settings, count)
    # fork: the children start with the modules already imported (seconds saved each, and
    # their pages shared with the parent until written).
    context = multiprocessing.get_context("fork")
    stopping = False

    def start(index: int) -> BaseProcess:
        process = context.Process(
            target=_child,
            args=(shared, index, config_file),
            name=f"vestnik-{index}",
            daemon=False,
        )
        process.start()
        return process

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes = {index: start(index) for index in range(count)}
    print(f"Started {count} server processes: {_pids(processes)}", flush=True)
    try:
        while not stopping:
            wait([process.sentinel for process in processes.values()], timeout=0.5)
            for index, process in list(processes.items()):
                if process.is_alive() or stopping:
                    continue
                if process.exitcode == EXIT_START_FAILED:
                    raise CliError(f"server process {index} could not start (the line above)")
                logger.error(
                    "server process %d (pid %s) exited with %s; starting it again",
                    index,
                    process.pid,
                    process.exitcode,
                )
                time.sleep(RESTART_DELAY_SECONDS)
                processes[index] = start(index)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_all(processes, settings.delivery.shutdown_grace_seconds + STOP_MARGIN_SECONDS)


def _stop_all(processes: dict[int, BaseProcess], timeout: float) -> None:
    for process in processes.values():
        if process.is_alive() and process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes.values():
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            logger.error("server process %s did not stop in time; killing it", process.pid)
            process.kill()
            process.join()


def _pids(processes: dict[int, BaseProcess]) -> str:
    return ", ".join(f"#{index} pid {p.pid}" for index, p in sorted(processes.items()))
