"""`vestnik check-config`: is the configuration usable, and does everything it names answer?

One line per check, in this order: the configuration itself (already validated by
`Settings.load` when this runs); in live mode, whether any route can deliver; a FAIL per
secret that still holds a placeholder; the database (connect, `SELECT 1`, schema revision
against this version's head), SMTP (connect, EHLO, STARTTLS and login when configured),
Telegram (`getMe`, and the webhook when in webhook mode) and each SMS service (its balance):

    ok   config    vestnik.toml (notify.mode = live)
    ok   delivery  live: Telegram, reserve SMS via main (http)
    FAIL secret    admin.token (VESTNIK_ADMIN__TOKEN) looks like a placeholder (it contains …
    ok   database  postgresql+asyncpg://vestnik:***@postgres:5432/vestnik (schema 0004, up to date)
    FAIL smtp      cannot connect to smtp.example.com:25: Connection refused
    skip telegram  no token (telegram.token)
    ok   sms:main  http: balance 812.40 RUB

The `delivery` line fails when nothing can be delivered (service SMS without an SMS service;
Telegram with neither a bot token nor a reserve SMS service) and warns (`warn`, not a
failure) when those who have not subscribed to the bot would get nothing. A placeholder is
what `.env.example` and the docs show (`change-me-…`, `<token>`, `your-…`): a secret that is
published protects nothing. Secrets that are too short never get here: the settings refuse
them when they load.

An SMS service that cannot authenticate delivery callbacks (no `token`, SMS.ru without
`api_key`, Twilio without its auth token) refuses them all; its line says so and what to set.
The checks run concurrently, each within `CHECK_TIMEOUT_SECONDS`. Nothing secret is
printed: every detail passes through the same redaction as the logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

import aiohttp
import aiosmtplib
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from bot.cli.db_file import missing_sqlite_file
from bot.logs import Redactor, secrets_from_settings
from bot.settings import DEFAULT_CONFIG_FILE, MIN_SECRET_CHARS, Settings
from bot.telegram import create_bot
from dispatch.config import SmsServiceConfig
from dispatch.delivery.channels.sms.registry import build_provider
from dispatch.ops.sms_check import check_service
from dispatch.ops.sms_check import describe_error as _describe
from dispatch.ops.sms_price import sms_price
from storage import migrate
from storage.database import create_database, describe_db_error

if TYPE_CHECKING:
    from aiogram import Bot

# Everything a check needs is imported above or, for aiogram (only with a bot token), by
# `run_checks` before the clocks start: importing it takes seconds on a small machine, and
# that time must not count against a check's timeout.

CHECK_TIMEOUT_SECONDS = 5.0

Status = Literal["ok", "fail", "warn", "skip"]
_LABELS: dict[str, str] = {"ok": "ok", "fail": "FAIL", "warn": "warn", "skip": "skip"}


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    """`config`, `delivery`, `secret`, `database`, `smtp`, `telegram`, `sms:<name>` (or
    `sms` when none)."""
    status: Status
    detail: str

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    def line(self, width: int = 0) -> str:
        return f"{_LABELS[self.status]:<4} {self.name:<{width}}  {self.detail}".rstrip()


def _ok(name: str, detail: str) -> CheckResult:
    return CheckResult(name, "ok", detail)


def _fail(name: str, detail: str) -> CheckResult:
    return CheckResult(name, "fail", detail)


def _skip(name: str, detail: str) -> CheckResult:
    return CheckResult(name, "skip", detail)


def _warn(name: str, detail: str) -> CheckResult:
    return CheckResult(name, "warn", detail)


# --- the checks --------------------------------------------------------------------------


def check_file(settings: Settings, config_file: Path | None) -> CheckResult:
    source = config_file or (DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None)
    where = str(source) if source else "no file: defaults and VESTNIK_* environment variables"
    return _ok("config", f"{where} (notify.mode = {settings.notify.mode})")


_ADD_SMS = "add an [[sms_services]] entry to the config file (README, SMS services)"


def _sms_in_use(settings: Settings) -> SmsServiceConfig | None:
    """The service notifications go by: `notify.sms_service`, else the first listed."""
    wanted = settings.notify.sms_service
    services = settings.sms_services
    if wanted is None:
        return services[0] if services else None
    return next((service for service in services if service.name == wanted), None)


def _why_no_sms(settings: Settings) -> str:
    wanted = settings.notify.sms_service
    if wanted is not None:
        return f"notify.sms_service = {wanted!r} names no [[sms_services]] entry"
    return "no [[sms_services]] entry"


def check_delivery(settings: Settings) -> CheckResult | None:
    """In live mode, whether any route can deliver (the rule of `choose_route`); None in the
    other modes, which send nothing."""
    notify = settings.notify
    if notify.mode != "live":
        return None
    sms = _sms_in_use(settings)
    via = f"SMS via {sms.name} ({sms.kind})" if sms is not None else ""
    if notify.service == "sms":
        if sms is None:
            return _fail(
                "delivery",
                f"notify.service = sms, but {_why_no_sms(settings)}: nothing can be "
                f"delivered; {_ADD_SMS}",
            )
        return _ok("delivery", f"live: {via}")
    no_reserve: str | None = None
    if notify.reserve == "none":
        no_reserve = "notify.reserve = none"
    elif sms is None:
        no_reserve = _why_no_sms(settings)
    if not settings.telegram.token:
        if no_reserve is not None:
            return _fail(
                "delivery",
                "notify.service = telegram, but there is no bot (telegram.token, "
                f"VESTNIK_TELEGRAM__TOKEN) and no reserve SMS ({no_reserve}): nothing can be "
                f"delivered; set telegram.token, or {_ADD_SMS} with notify.reserve = sms",
            )
        return _ok("delivery", f"live: no bot (telegram.token), so everything goes by {via}")
    if no_reserve is not None:
        return _warn(
            "delivery",
            f"live: Telegram without a reserve SMS ({no_reserve}): clients and managers who "
            f"have not subscribed to the bot get nothing; {_ADD_SMS} and set "
            "notify.reserve = sms (VESTNIK_NOTIFY__RESERVE)",
        )
    return _ok("delivery", f"live: Telegram, reserve {via}")


# Lower case; met in `.env.example`, the docs and the examples people copy from.
_PLACEHOLDER_MARKS = (
    "change-me",
    "changeme",
    "change_me",
    "example",
    "your-",
    "your_",
    "xxx",
    "placeholder",
    "...",
    "…",
)
_ANGLE_PLACEHOLDER_RE = re.compile(r"<[^<>]*>")


def placeholder_mark(value: str) -> str | None:
    """Why `value` looks like a placeholder copied from an example rather than a real secret,
    or None."""
    text = value.strip().lower()
    if text == "secret":
        return 'it is the word "secret"'
    if _ANGLE_PLACEHOLDER_RE.search(text):
        return "it has a <…> placeholder in it"
    mark = next((mark for mark in _PLACEHOLDER_MARKS if mark in text), None)
    return f'it contains "{mark}"' if mark is not None else None


def _url_password(url: str) -> str | None:
    try:
        return make_url(url).password
    except Exception:  # a URL the engine refuses is the database check's to report
        return None


def _named_secrets(settings: Settings) -> list[tuple[str, str | None, str]]:
    """(what the user calls it, its value, how to fix a placeholder) for every secret."""
    random = (
        f"set a random string of at least {MIN_SECRET_CHARS} characters (`openssl rand -hex 32`)"
    )
    named: list[tuple[str, str | None, str]] = [
        (
            "webhook.secret (VESTNIK_WEBHOOK__SECRET)",
            settings.webhook.secret,
            f"{random} and give the ERP the same",
        ),
        ("admin.token (VESTNIK_ADMIN__TOKEN)", settings.admin.token, random),
        ("metrics.token (VESTNIK_METRICS__TOKEN)", settings.metrics.token, random),
        (
            "telegram.webhook_secret (VESTNIK_TELEGRAM__WEBHOOK_SECRET)",
            settings.telegram.webhook_secret,
            f"{random}, or leave it out (it is then derived from the bot token)",
        ),
        (
            "smtp.password (VESTNIK_SMTP__PASSWORD)",
            settings.smtp.password,
            "set the mailbox's real password",
        ),
        (
            "the password in database.url (VESTNIK_DATABASE__URL)",
            _url_password(settings.database.url),
            "set the database role's real password",
        ),
    ]
    for service in settings.sms_services:
        where = f"[[sms_services]] {service.name!r}"
        real = "set the real one from the provider's account"
        named += [
            (f"{where} password", service.password, real),
            (f"{where} api_key", service.api_key, real),
            (f"{where} token", service.token, f"{real} (callback secret: {random})"),
        ]
    return named


def check_secrets(settings: Settings) -> list[CheckResult]:
    """One FAIL per secret that still holds a placeholder; nothing when none does (the
    lengths were checked when the settings loaded)."""
    results = []
    for name, value, fix in _named_secrets(settings):
        why = placeholder_mark(value) if value else None
        if why is not None:
            results.append(_fail("secret", f"{name} looks like a placeholder ({why}): {fix}"))
    return results


async def check_database(settings: Settings) -> CheckResult:
    url = make_url(settings.database.url)
    shown = url.render_as_string(hide_password=True)
    missing = missing_sqlite_file(settings.database.url)
    if missing is not None:
        # A fresh setup: `serve` creates and migrates the file at start, so this is the
        # expected state before the first run, not a mistake.
        return _warn(
            "database",
            f"{shown}: the file {missing} does not exist yet "
            "(`vestnik serve` creates it, or run `vestnik migrate`)",
        )
    db = create_database(settings.database.url)
    try:
        try:
            await db.ping()
            current = await migrate.current_revision(db)
        except Exception as exc:
            return _fail("database", f"cannot reach {shown}: {describe_db_error(exc)}")
    finally:
        await db.dispose()
    head = migrate.head_revision()
    if current == head:
        return _ok("database", f"{shown} (schema {current}, up to date)")
    if current is None:
        return _fail("database", f"{shown} answers but has no schema (run `vestnik migrate`)")
    script = ScriptDirectory.from_config(migrate.alembic_config())
    known = {revision.revision for revision in script.walk_revisions()}
    if current in known:
        return _fail(
            "database",
            f"{shown} (schema {current}, this version needs {head}: run `vestnik migrate`)",
        )
    return _fail(
        "database",
        f"{shown} (schema {current} is unknown to this version, whose newest is {head}: "
        "the database was migrated by a newer Vestnik)",
    )


async def check_smtp(settings: Settings) -> CheckResult:
    smtp = settings.smtp
    if not smtp.host:
        return _skip("smtp", "no server (smtp.host)")
    where = f"{smtp.host}:{smtp.port}"
    client = aiosmtplib.SMTP(
        hostname=smtp.host,
        port=smtp.port,
        use_tls=smtp.tls,
        start_tls=False,
        timeout=min(smtp.timeout_seconds, CHECK_TIMEOUT_SECONDS),
    )
    steps: list[str] = ["TLS"] if smtp.tls else []
    try:
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            return _fail("smtp", f"cannot connect to {where}: {_describe(exc)}")
        try:
            await client.ehlo()
        except aiosmtplib.SMTPException as exc:
            return _fail("smtp", f"{where} refused EHLO: {_describe(exc)}")
        if smtp.starttls and not smtp.tls:
            try:
                await client.starttls()
            except (aiosmtplib.SMTPException, OSError) as exc:
                return _fail("smtp", f"{where}: STARTTLS failed: {_describe(exc)}")
            steps.append("STARTTLS")
        if smtp.username:
            try:
                await client.login(smtp.username, smtp.password or "")
            except aiosmtplib.SMTPException as exc:
                return _fail(
                    "smtp", f"{where}: login as {smtp.username} refused: {_describe(exc)}"
                )
            steps.append(f"login as {smtp.username}")
        with contextlib.suppress(aiosmtplib.SMTPException):
            await client.quit()  # the server answered everything that matters
    finally:
        if client.is_connected:
            client.close()
    return _ok("smtp", where + (f" ({', '.join(steps)})" if steps else ""))


async def check_telegram(settings: Settings) -> CheckResult:
    telegram = settings.telegram
    if not telegram.token:
        return _skip("telegram", "no token (telegram.token)")
    if telegram.mode == "webhook" and not settings.http.public_url:
        return _fail("telegram", "mode = webhook needs http.public_url (VESTNIK_HTTP__PUBLIC_URL)")
    from aiogram.exceptions import (
        TelegramAPIError,
        TelegramNetworkError,
        TelegramUnauthorizedError,
    )

    bot = create_bot(telegram)
    assert bot is not None
    api = telegram.api_base.rstrip("/")
    try:
        try:
            me = await bot.get_me()
        except TelegramUnauthorizedError:
            return _fail("telegram", f"{api} refused the token (401 Unauthorized)")
        except TelegramNetworkError as exc:
            return _fail("telegram", f"cannot reach {api}: {_describe(exc)}")
        except TelegramAPIError as exc:
            return _fail("telegram", f"{api}: getMe failed: {_describe(exc)}")
        except (aiohttp.ClientError, OSError) as exc:
            return _fail("telegram", f"cannot reach {api}: {_describe(exc)}")
        detail = f"@{me.username} via {api}, {telegram.mode} mode"
        if telegram.mode == "webhook":
            detail += "; " + await _webhook_state(bot, settings)
    except Exception as exc:  # aiogram wraps network trouble in its own exceptions
        return _fail("telegram", f"cannot reach {api}: {_describe(exc)}")
    finally:
        await bot.session.close()
    return _ok("telegram", detail)


async def _webhook_state(bot: Bot, settings: Settings) -> str:
    expected = settings.telegram_webhook_url()
    info = await bot.get_webhook_info()
    if not info.url:
        state = f"no webhook set yet (`vestnik serve` sets {expected})"
    elif info.url != expected:
        state = f"webhook is {info.url}, `vestnik serve` will set {expected}"
    else:
        state = f"webhook {info.url}"
    state += f", {info.pending_update_count} pending"
    if info.last_error_message:
        state += f", last error: {info.last_error_message}"
    return state


async def check_sms_service(settings: Settings, service: SmsServiceConfig) -> CheckResult:
    name = f"sms:{service.name}"
    # A refused callback is not a failure (sending works, SMS.ru/SMSC/SMS Aero/Twilio are
    # polled), but receipts posted by the provider are all refused until it is fixed: the
    # line says so either way.
    async with aiohttp.ClientSession() as http:
        provider = build_provider(service, http)
        checked = await check_service(provider, public_url=settings.http.public_url)
        if checked.balance is None:
            return _fail(name, checked.line())
        # The threshold counts SMS left: the money balance at the price of one segment
        # (the provider's price API, else `price_per_sms`; no journal is read here).
        price = await sms_price(provider, None)
    threshold = settings.notify.low_balance_threshold
    if price is None:
        remark = " (SMS left unknown: no price API and no price_per_sms)" if threshold else ""
    else:
        left = price.sms_for(checked.balance.amount)
        below = bool(threshold) and left < threshold
        remark = f" = {left} SMS" + (
            f", below notify.low_balance_threshold = {threshold} SMS" if below else ""
        )
    return _ok(name, checked.line(remark))


# --- running them ------------------------------------------------------------------------


async def _bounded(
    name: str, check: Callable[[], Awaitable[CheckResult]], seconds: float
) -> CheckResult:
    try:
        async with asyncio.timeout(seconds):
            return await check()
    except TimeoutError:
        return _fail(name, f"no answer within {seconds:g} s")
    except Exception as exc:  # a check must report, never crash the command
        return _fail(name, _describe(exc))


async def run_checks(
    settings: Settings,
    config_file: Path | None,
    *,
    seconds: float = CHECK_TIMEOUT_SECONDS,
) -> list[CheckResult]:
    """Every check, in the documented order; details are redacted (no secrets)."""
    checks: list[tuple[str, Callable[[], Awaitable[CheckResult]]]] = [
        ("database", lambda: check_database(settings)),
        ("smtp", lambda: check_smtp(settings)),
        ("telegram", lambda: check_telegram(settings)),
    ]
    for service in settings.sms_services:
        checks.append((f"sms:{service.name}", partial(check_sms_service, settings, service)))
    if settings.telegram.token:
        import aiogram  # noqa: F401  (loaded here, outside the timed checks)
    delivery = check_delivery(settings)
    results = [check_file(settings, config_file), *([delivery] if delivery else [])]
    results += await asyncio.gather(*(_bounded(name, run, seconds) for name, run in checks))
    if not settings.sms_services:
        results.append(_skip("sms", "no SMS service ([[sms_services]])"))
    redact = Redactor(secrets_from_settings(settings))
    redacted = [CheckResult(r.name, r.status, redact(r.detail)) for r in results]
    # Not redacted: a placeholder line names the pattern, never the value, and redacting a
    # placeholder that is nothing but the pattern ("secret", "...") would blank it out.
    head = 2 if delivery else 1
    return redacted[:head] + check_secrets(settings) + redacted[head:]


def format_results(results: list[CheckResult]) -> list[str]:
    width = max((len(result.name) for result in results), default=0)
    return [result.line(width) for result in results]


def print_checks(
    settings: Settings, config_file: Path | None, *, stream: IO[str] | None = None
) -> int:
    """Run the checks, print one line each; 0 when none failed, else 1."""
    results = asyncio.run(run_checks(settings, config_file))
    out = stream if stream is not None else sys.stdout
    for line in format_results(results):
        print(line, file=out)
    return 1 if any(result.failed for result in results) else 0
