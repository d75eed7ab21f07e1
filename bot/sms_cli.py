"""`vestnik balance` and `vestnik test-sms`: talk to the SMS provider directly."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp

from bot.settings import Settings
from dispatch.channels.outcome import OutcomeKind
from dispatch.channels.sms.base import ProviderError, SmsProvider
from dispatch.channels.sms.registry import build_provider
from dispatch.phones import InvalidPhone, mask_phone, normalise_phone
from dispatch.sms_tools import send_test_sms
from storage.database import create_database, describe_db_error, is_unavailable_error

T = TypeVar("T")


def _with_provider(
    settings: Settings, service: str | None, action: Callable[[SmsProvider], Awaitable[T]]
) -> T:
    from bot.cli import EXIT_USAGE, CliError

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
    from bot.cli import CliError

    async def read(provider: SmsProvider) -> str:
        try:
            balance = await provider.balance()
        except ProviderError as exc:
            raise CliError(f"{provider.name} did not give its balance: {exc}") from None
        threshold = settings.notify.low_balance_threshold
        state = (
            "low-balance alerts off (threshold 0)"
            if not threshold
            else f"{'BELOW' if balance.amount < threshold else 'above'} threshold {threshold}"
        )
        currency = f" {balance.currency}" if balance.currency else ""
        return f"{provider.name} ({provider.kind}): balance {balance.amount}{currency}; {state}"

    print(_with_provider(settings, service, read))


def run_test_sms(settings: Settings, phone: str, service: str | None) -> None:
    from bot.cli import EXIT_USAGE, CliError

    try:
        normalised = normalise_phone(phone)
    except InvalidPhone as exc:
        raise CliError(f"{exc} (example: +79161234567)", EXIT_USAGE) from None

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
