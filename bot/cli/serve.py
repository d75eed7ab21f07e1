"""`vestnik serve`: run the app until SIGINT/SIGTERM, then stop gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from pathlib import Path

from aiohttp import web

from bot.app import create_app
from bot.cli.database_errors import database_error
from bot.cli.errors import CliError
from bot.errors import BotError
from bot.http_server import make_runner
from bot.sandbox.wiring import Sandbox
from bot.settings import DEFAULT_CONFIG_FILE, Settings
from dispatch.delivery.channels.sms.registry import callbacks_refused
from storage.database import safe_url

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_SECONDS = 10.0

MODE_TEXT = {
    "off": "off (events are stored, no notification is created)",
    "test": "test (notifications are journaled with their text, nothing is sent)",
    "live": "live (notifications are delivered)",
}


class ServeError(BotError):
    """The server could not start; the message says why."""


def describe(settings: Settings, config_file: Path | None) -> list[str]:
    """The start-up banner: what runs, and what is not configured yet."""
    url = safe_url(settings.database.url)
    source = config_file or (DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None)
    lines = [
        f"Vestnik listening on http://{settings.http.host}:{settings.http.port}",
        f"  mode:     {MODE_TEXT[settings.notify.mode]} (the settings API may change it)",
        f"  database: {url}",
        f"  config:   {source or 'no file: defaults and VESTNIK_* environment variables'}",
    ]
    missing = []
    if not settings.webhook.secret:
        missing.append(
            "webhook.secret (VESTNIK_WEBHOOK__SECRET): unsigned ERP events are accepted "
            "from direct loopback callers only (not through a proxy)"
        )
    if not settings.admin.token:
        missing.append(
            "admin.token (VESTNIK_ADMIN__TOKEN): the admin API answers direct loopback "
            "callers only (not through a proxy)"
        )
    if not settings.telegram.token:
        missing.append("telegram.token (VESTNIK_TELEGRAM__TOKEN): no Telegram bot")
    if not settings.sms_services:
        missing.append("[[sms_services]]: no SMS provider, so no SMS route")
    for service in settings.sms_services:
        refused = callbacks_refused(service, settings.http.public_url)
        if refused:
            missing.append(f"sms_services {service.name!r} ({service.kind}): {refused}")
    if not settings.smtp.host:
        missing.append("smtp.host (VESTNIK_SMTP__HOST): no low-balance e-mails")
    if missing:
        lines.append("Not configured yet:")
        lines.extend(f"  - {item}" for item in missing)
        lines.append("See README.md, section Configuration.")
    lines.append(
        "Next: in another terminal, `vestnik send-event examples/event.json`, then "
        "`vestnik journal` to see its notifications (or stop this and start "
        "`vestnik serve --sandbox` to watch them reach fake phones and chats)"
    )
    return lines


async def serve(
    settings: Settings,
    *,
    config_file: Path | None,
    migrate: bool,
    sandbox: Sandbox | None = None,
    reuse_port: bool = False,
    poll_telegram: bool = True,
    banner: bool = True,
) -> None:
    """Serve until SIGINT/SIGTERM. `reuse_port`, `poll_telegram` and `banner` are for one
    of the processes of `serve --workers` (bot.cli.workers)."""
    app = create_app(settings, run_migrations=migrate, poll_telegram=poll_telegram)
    if sandbox is not None:
        sandbox.attach(app)
    # Header and keep-alive deadlines and the connection cap (bot.http_server): a slow or
    # flooding client cannot hold the process's connections or descriptors.
    runner = make_runner(app, settings.http, handle_signals=False, access_log=None)
    try:
        await runner.setup()
    except Exception as exc:
        problem = database_error(settings.database.url, exc)
        if problem is not None:
            raise problem from None
        raise
    site = web.TCPSite(
        runner,
        settings.http.host,
        settings.http.port,
        shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
        reuse_port=reuse_port or None,
    )
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ServeError(
            f"cannot listen on {settings.http.host}:{settings.http.port}: {exc.strerror} "
            "(choose another with --port or VESTNIK_HTTP__PORT)"
        ) from None
    # Before the banner: whoever reads it may stop the server at once.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    if banner:
        lines = describe(settings, config_file)
        if sandbox is not None:
            lines = lines[:-1] + sandbox.banner(settings)  # its own next step replaces ours
        for line in lines:
            print(line, flush=True)
    # The ~280,000 objects of the imported libraries (aiogram, SQLAlchemy, pydantic) live as
    # long as the process: out of the collector's sight, a full collection takes
    # microseconds instead of a ~0.2 s pause of the event loop.
    gc.collect()
    gc.freeze()
    await stop.wait()
    print("Stopping: finishing in-flight work…", flush=True)
    await runner.cleanup()
    print("Stopped.", flush=True)


def run_server(
    settings: Settings,
    *,
    config_file: Path | None,
    migrate: bool,
    sandbox: Sandbox | None = None,
) -> None:
    try:
        asyncio.run(serve(settings, config_file=config_file, migrate=migrate, sandbox=sandbox))
    except ServeError as exc:
        raise CliError(str(exc)) from None
    finally:
        if sandbox is not None:
            sandbox.close()
