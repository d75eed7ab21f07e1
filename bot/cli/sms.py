"""`vestnik balance` and `vestnik test-sms`: talk to the SMS provider directly."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
from sqlalchemy.exc import DBAPIError

from bot.cli.db_file import missing_sqlite_file, require_database_file
from bot.cli.errors import EXIT_USAGE, CliError
from bot.settings import Settings
from dispatch.config import NotifySettings
from dispatch.delivery.channels.outcome import OutcomeKind
from dispatch.delivery.channels.sms.base import ProviderError, SmsProvider
from dispatch.delivery.channels.sms.registry import build_provider
from dispatch.ops.balance import balance_report
from dispatch.ops.sms_tools import send_test_sms
from dispatch.phones import InvalidPhone, mask_phone, normalise_phone
from dispatch.runtime_config import RuntimeConfig
from storage.database import Database, create_database, describe_db_error, is_unavailable_error

T = TypeVar("T")


def _with_provider(
    settings: Settings, service: str | None, action: Callable[[SmsProvider], Awaitable[T]]
) -> T:
    if not settings.sms_services:
        raise CliError("no SMS service is configured: add a [[sms_services]] entry", EXIT_USAGE)
    name = service or settings.notify.sms_service or settings.sms_services[0].name
    config = next((item for item in settings.sms_services if item.name == name), None)
    if config is None:
        known = ", ".join(item.name for item in settings.sms_services)
        raise CliError(f"no SMS service named {name!r} (configured: {known})", EXIT_USAGE)

    async def run() -> T:
        async with aiohttp.ClientSession() as http:
            return await action(build_provider(config, http))

    return asyncio.run(run())


def print_balance(settings: Settings, service: str | None) -> None:
    """The same report as `GET /api/v1/balance` and the bot's /balance: the figure read now,
    the effective threshold and provider (file + settings API, when the database answers)
    and whether the low-balance alert is raised."""
    if not settings.sms_services:
        raise CliError("no SMS service is configured: add a [[sms_services]] entry", EXIT_USAGE)

    async def run() -> str:
        db = _existing_database(settings)
        try:
            notify = await _effective_notify(settings, db) if db is not None else None
            alert_db = db if notify is not None else None
            notify = notify or settings.notify
            name = service or notify.sms_service or settings.sms_services[0].name
            config = next((item for item in settings.sms_services if item.name == name), None)
            if config is None:
                known = ", ".join(item.name for item in settings.sms_services)
                raise CliError(f"no SMS service named {name!r} (configured: {known})", EXIT_USAGE)
            async with aiohttp.ClientSession() as http:
                provider = build_provider(config, http)
                try:
                    report = await balance_report(provider, notify, db=alert_db)
                except ProviderError as exc:
                    raise CliError(f"{provider.name} did not give its balance: {exc}") from None
        finally:
            if db is not None:
                await db.dispose()
        return report.describe()

    print(asyncio.run(run()))


def _existing_database(settings: Settings) -> Database | None:
    """The configured database, unless it is a SQLite file that does not exist (opening it
    would create an empty one)."""
    if missing_sqlite_file(settings.database.url) is not None:
        return None
    return create_database(settings.database.url)


async def _effective_notify(settings: Settings, db: Database) -> NotifySettings | None:
    """The notify settings the server uses (the file overlaid with the settings API), or
    None when the database does not answer (the caller falls back to the file)."""
    config = RuntimeConfig(
        notify=settings.notify,
        event_types=settings.event_types,
        sms_service_names=[item.name for item in settings.sms_services],
        has_webhook_secret=bool(settings.webhook.secret),
    )
    try:
        async with db.sessions() as session:
            return (await config.current(session)).notify
    except (DBAPIError, OSError, TimeoutError) as exc:
        print(
            f"note: stored settings not read ({describe_db_error(exc)}); "
            "using the config file's threshold",
            file=sys.stderr,
        )
        return None


def run_test_sms(settings: Settings, phone: str, service: str | None) -> None:
    try:
        normalised = normalise_phone(phone)
    except InvalidPhone as exc:
        raise CliError(f"{exc} (example: +79161234567)", EXIT_USAGE) from None
    # The test SMS is journaled: without the database it would be sent and then fail.
    require_database_file(settings.database.url)

    async def send(provider: SmsProvider) -> str:
        db = create_database(settings.database.url)
        try:
            result = await send_test_sms(db, provider, normalised, actor="cli")
        except Exception as exc:
            if is_unavailable_error(exc):
                raise CliError(
                    f"cannot journal the test SMS: {describe_db_error(exc)} "
                    "(has `vestnik migrate` run?)"
                ) from None
            raise
        finally:
            await db.dispose()
        outcome = result.outcome
        if outcome.kind is not OutcomeKind.SENT:
            raise CliError(
                f"test SMS to {mask_phone(normalised)} via {provider.name} failed: "
                f"{outcome.reason} (journal #{result.notification_id})"
            )
        return (
            f"test SMS to {mask_phone(normalised)} sent via {provider.name} "
            f"({result.encoding}, {result.segments} segment(s), "
            f"provider id {outcome.provider_message_id or '-'}, journal #{result.notification_id})"
        )

    print(_with_provider(settings, service, send))
