"""Nothing sensitive reaches the output: `RedactingFilter`, installed on the handler, rewrites
each record before it is formatted (the message merged with its args, extra fields, the
exception and stack text):

- the configured secrets (`secrets_from_settings`) and those learnt at run time
  (`redact_also`: the SMS services stored through the admin API) become `***`, also
  URL-encoded or JSON-escaped;
- anything shaped like a Telegram bot token (`<digits>:<30+ characters>`) and the password of
  any `scheme://user:password@host` URL become `***`;
- phone numbers (E.164 `+79161234567`, `+7 916 123-45-67`, `8 (916) 123-45-67`,
  `89161234567`, …) are masked as `dispatch.phones.mask_phone` does: `+7916***4567`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import traceback
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from sqlalchemy.engine import make_url

from bot.logs.context import current_log_context
from bot.settings import Settings
from dispatch.phones import mask_phone

REDACTED = "***"
MIN_SECRET_LENGTH = 3
"""Shorter configured secrets are not searched for (they would blank out ordinary text)."""

# A bot token anywhere, also inside an API URL (".../bot123456:AAF…/sendMessage").
TELEGRAM_TOKEN_RE = re.compile(r"\d{6,}:[A-Za-z0-9_-]{30,}")
# The password of scheme://user:password@host.
_URL_PASSWORD_RE = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:)[^@/\s]+(?=@)")
# "+" then 10-15 digits, single spaces, dashes, dots or brackets between them.
_INTERNATIONAL_RE = re.compile(r"(?<![\w+])\+\d(?:[ \-.()]{0,2}\d){9,14}(?!\d)")
# Russian national formats without "+": 8 or 7 then 10 digits, optionally grouped as
# 8 (916) 123-45-67 / 8-916-123-45-67 / 89161234567.
_RUSSIAN_RE = re.compile(
    r"(?<![\w+])[78][ \-]?\(?\d{3}\)?[ \-]?\d{3}[ \-]?\d{2}[ \-]?\d{2}(?![\w])"
)


def _mask_international(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return mask_phone("+" + digits)


def _mask_russian(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return mask_phone("+7" + digits[1:])


def mask_phones(text: str) -> str:
    """Every phone number in `text` masked: `+7 916 123-45-67` → `+7916***4567`."""
    if not any(char.isdigit() for char in text):
        return text
    text = _INTERNATIONAL_RE.sub(_mask_international, text)
    return _RUSSIAN_RE.sub(_mask_russian, text)


class Redactor:
    """Rewrites text: configured secrets, bot tokens and URL passwords → `***`, phones
    masked."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._variants: set[str] = set()
        self._secrets_re: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str | None]) -> None:
        """Redact these secrets too (ones learnt at run time)."""
        variants = set(self._variants)
        for secret in secrets:
            if not secret or len(secret) < MIN_SECRET_LENGTH:
                continue
            variants.update(
                {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
            )
        if variants == self._variants:
            return
        # Longest first, so a secret containing another one is replaced whole.
        ordered = sorted(variants, key=len, reverse=True)
        # One assignment each: a record being redacted meanwhile uses the old or new set.
        self._secrets_re = re.compile("|".join(re.escape(item) for item in ordered))
        self._variants = variants

    def __call__(self, text: str) -> str:
        if self._secrets_re is not None:
            text = self._secrets_re.sub(REDACTED, text)
        text = TELEGRAM_TOKEN_RE.sub(REDACTED, text)
        if "://" in text:
            text = _URL_PASSWORD_RE.sub(lambda m: m.group("head") + REDACTED, text)
        return mask_phones(text)

    def value(self, value: Any) -> Any:
        """`value` with every string inside it redacted (dicts, lists, tuples walked);
        other objects become their redacted `str`, numbers and None stay."""
        if isinstance(value, str):
            return self(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {self(str(key)): self.value(item) for key, item in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(item) for item in value]
        return self(str(value))


# The attributes every LogRecord has; anything else came from `extra=`.
_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "log_context",
    "context",
    "taskName",
}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's `extra=` fields."""
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _STANDARD_ATTRS and not key.startswith("_")
    }


class RedactingFilter(logging.Filter):
    """Rewrites each record in place (message with args merged, extra fields, exception
    and stack text) through a `Redactor`, and attaches the bound context ids."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_vestnik_redacted", False):
            return True
        redact = self.redactor
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the line
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = redact(message)
        record.args = None
        for key, value in extra_fields(record).items():
            setattr(record, key, redact.value(value))
        if record.exc_info and record.exc_info[0] is not None:
            text = record.exc_text or "".join(traceback.format_exception(*record.exc_info))
            record.exc_text = redact(text.rstrip("\n"))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        context = {key: redact(value) for key, value in current_log_context().items()}
        record.context = context
        record.log_context = (
            " [" + " ".join(f"{key}={value}" for key, value in context.items()) + "]"
            if context
            else ""
        )
        record._vestnik_redacted = True
        return True


_learnt: set[str] = set()


def redact_also(secrets: Iterable[str | None]) -> None:
    """Secrets learnt at run time (the SMS services stored through the admin API): redacted
    from now on by the root logger's handlers, and by any `configure_logging` later."""
    found = {secret for secret in secrets if secret}
    _learnt.update(found)
    for handler in logging.getLogger().handlers:
        for candidate in handler.filters:
            if isinstance(candidate, RedactingFilter):
                candidate.redactor.add(found)


def learnt_secrets() -> frozenset[str]:
    return frozenset(_learnt)


def secrets_from_settings(settings: Settings) -> list[str]:
    """Every secret value in `settings`: webhook secret, admin token, Telegram token and
    webhook secret (configured or derived), SMTP password, the desk's cookie key, the ERP
    callback secret, each SMS service's password, api_key and token, and the database URL's
    password."""
    values: list[str | None] = [
        settings.webhook.secret,
        settings.admin.token,
        settings.metrics.token,
        settings.telegram.token,
        settings.telegram.webhook_secret,
        settings.smtp.password,
        settings.desk.secret,
        settings.erp.callback_secret,
    ]
    for service in settings.sms_services:
        values.extend([service.password, service.api_key, service.token])
    with contextlib.suppress(Exception):  # an unparseable URL has no password to find
        values.append(make_url(settings.database.url).password)
    if settings.telegram.token and not settings.telegram.webhook_secret:
        # The derived secret is a nicety; it never fails the logging setup.
        with contextlib.suppress(Exception):
            values.append(settings.telegram.secret_token())
    return [value for value in values if value]
