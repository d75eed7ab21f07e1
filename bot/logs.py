"""Logging: readable lines by default, JSON lines when `log.format = "json"`.

Every line carries the ids bound to the current context (`request_id` of the HTTP request,
`update_id` of the Telegram update, …): `bind_log_context` / `log_context` set them,
`request_id_middleware()` does it for each aiohttp request (taking `X-Request-Id` or making
one, and echoing it in the response), `update_log_middleware` for each aiogram update.

Nothing sensitive reaches the output: `RedactingFilter`, installed on the handler, rewrites
each record before it is formatted (the message merged with its args, extra fields, the
exception and stack text):

- the configured secrets (`secrets_from_settings`) become `***`, also URL-encoded or
  JSON-escaped;
- anything shaped like a Telegram bot token (`<digits>:<30+ characters>`) and the password of
  any `scheme://user:password@host` URL become `***`;
- phone numbers (E.164 `+79161234567`, `+7 916 123-45-67`, `8 (916) 123-45-67`,
  `89161234567`, …) are masked as `dispatch.phones.mask_phone` does: `+7916***4567`.

The formatter applies the same rewriting to the finished line once more, for anything a
formatter adds itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

from aiohttp import web
from aiohttp.typedefs import Middleware

from dispatch.phones import mask_phone

if TYPE_CHECKING:
    from bot.settings import Settings

REDACTED = "***"
REQUEST_ID_HEADER = "X-Request-Id"
MIN_SECRET_LENGTH = 3
"""Shorter configured secrets are not searched for (they would blank out ordinary text)."""

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s%(log_context)s: %(message)s"

# --- context ---------------------------------------------------------------------------

# (key, value) pairs in binding order; a tuple, so no context can change another's.
_Ids = tuple[tuple[str, str], ...]
_log_context: ContextVar[_Ids] = ContextVar("vestnik_log_context", default=())


def current_log_context() -> dict[str, str]:
    """The ids bound in this context."""
    return dict(_log_context.get())


def bind_log_context(**ids: object) -> Token[_Ids]:
    """Add ids to every log line of this context (and of tasks started from it).

    `None` values are ignored. Returns the token for `unbind_log_context`.
    """
    merged = dict(_log_context.get())
    merged.update({key: str(value) for key, value in ids.items() if value is not None})
    return _log_context.set(tuple(merged.items()))


def unbind_log_context(token: Token[_Ids]) -> None:
    """Restore the ids as they were before `bind_log_context` returned `token`."""
    _log_context.reset(token)


@contextmanager
def log_context(**ids: object) -> Iterator[dict[str, str]]:
    """`with log_context(update_id=42): ...` — the ids are on every line inside."""
    token = bind_log_context(**ids)
    try:
        yield current_log_context()
    finally:
        _log_context.reset(token)


# --- redaction -------------------------------------------------------------------------

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
        variants: set[str] = set()
        for secret in secrets:
            if not secret or len(secret) < MIN_SECRET_LENGTH:
                continue
            variants.update(
                {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
            )
        # Longest first, so a secret containing another one is replaced whole.
        ordered = sorted(variants, key=len, reverse=True)
        self._secrets_re = (
            re.compile("|".join(re.escape(item) for item in ordered)) if ordered else None
        )

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
        context = {key: redact(value) for key, value in _log_context.get()}
        record.context = context
        record.log_context = (
            " [" + " ".join(f"{key}={value}" for key, value in context.items()) + "]"
            if context
            else ""
        )
        record._vestnik_redacted = True
        return True


class TextFormatter(logging.Formatter):
    """`2026-11-27 10:15:00,123 INFO    vestnik.erp [request_id=…]: message`."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__(TEXT_FORMAT)
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "log_context"):
            record.log_context = ""
        return self.redactor(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context ids, the
    `extra=` fields, and `exc` with the traceback."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = getattr(record, "context", None)
        entry.update(context if context is not None else current_log_context())
        for key, value in extra_fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        line = json.dumps(entry, ensure_ascii=False, default=str)
        return self.redactor(line)


def secrets_from_settings(settings: Settings) -> list[str]:
    """Every secret value in `settings`: webhook secret, admin token, Telegram token and
    webhook secret (configured or derived), SMTP password, each SMS service's password,
    api_key and token, and the database URL's password."""
    from sqlalchemy.engine import make_url

    values: list[str | None] = [
        settings.webhook.secret,
        settings.admin.token,
        settings.telegram.token,
        settings.telegram.webhook_secret,
        settings.smtp.password,
    ]
    for service in settings.sms_services:
        values.extend([service.password, service.api_key, service.token])
    with contextlib.suppress(Exception):  # an unparseable URL has no password to find
        values.append(make_url(settings.database.url).password)
    if settings.telegram.token and not settings.telegram.webhook_secret:
        try:
            from bot.telegram_app import webhook_secret

            values.append(webhook_secret(settings.telegram))
        except Exception:  # the derived secret is a nicety; never fail logging setup
            pass
    return [value for value in values if value]


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a record comes (as `logging.lastResort`
    does), so a replaced or closed stderr (tests, embedding) never breaks logging."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


def configure_logging(
    level: str = "INFO",
    fmt: str = "text",
    *,
    secrets: Iterable[str | None] = (),
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send every log record to stderr (or `stream`), redacted, as text or JSON lines.

    `secrets`: the values never to print (see `secrets_from_settings`). Returns the handler.
    """
    redactor = Redactor(secrets)
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.addFilter(RedactingFilter(redactor))
    if fmt == "json":
        handler.setFormatter(JsonFormatter(redactor))
    else:
        handler.setFormatter(TextFormatter(redactor))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log repeats what our own lines say, one line per request.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # Libraries that narrate every step at INFO; our own lines say what matters
    # (storage.migrate logs the upgrade, bot.scheduler its jobs).
    for chatty in ("alembic", "apscheduler"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    return handler


# --- request and update ids ------------------------------------------------------------

_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

REQUEST_ID: Any = web.RequestKey("request_id", str) if hasattr(web, "RequestKey") else "request_id"
"""`request[REQUEST_ID]`: the id of the request being handled (a plain str key before
aiohttp 3.13)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_middleware(header: str = REQUEST_ID_HEADER) -> Middleware:
    """An aiohttp middleware: the request's `X-Request-Id` (when it is 1-128 characters of
    A-Z a-z 0-9 . _ : -), else a new one, bound as `request_id` to every log line of the
    request, stored as `request[REQUEST_ID]` and echoed in the response header.

    Put it first in `web.Application(middlewares=[...])` so it also covers the others.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get(header, "")
        request_id = given if _REQUEST_ID_RE.fullmatch(given) else new_request_id()
        request[REQUEST_ID] = request_id
        token = bind_log_context(request_id=request_id)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers[header] = request_id
            raise
        finally:
            _log_context.reset(token)
        if not response.prepared:
            response.headers[header] = request_id
        return response

    return middleware


async def update_log_middleware(
    handler: Callable[[Any, dict[str, Any]], Awaitable[Any]],
    event: Any,
    data: dict[str, Any],
) -> Any:
    """An aiogram outer middleware (`dispatcher.update.outer_middleware(...)`): binds the
    update's `update_id` to every log line while it is handled."""
    with log_context(update_id=getattr(event, "update_id", None)):
        return await handler(event, data)
