r"""Logging: readable lines by default, JSON lines when `log.format = "json"`.

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

One record is one line, whatever a caller puts in a value: the text format escapes control
characters (C0 and C1 controls, DEL, U+2028/2029, bidi overrides) in the line it writes: a
newline becomes the two characters `\n`, ESC becomes `\x1b`, so a receipt id holding
`\n2026-… CRITICAL …` cannot start a line of its own. The exception and stack text it
appends keep their real newlines (they are the formatter's own), but every one of their
lines is indented, so a line that starts at column 0 always starts a record. The JSON format
escapes the same characters as `\uXXXX`.

Refusal warnings are rate-limited on the output (`RefusalRateLimit`, installed by
`configure_logging` on the handler, so tests' `caplog` still sees every record): at most
`REFUSAL_BURST` WARNING records per (logger, message template) per `REFUSAL_INTERVAL_SECONDS`
from `handlers.*` and `bot.telegram_app`, then one summary line per interval.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import json
import logging
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
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


# --- one record, one line ---------------------------------------------------------------

# Everything a terminal or a line-based reader (a log shipper, `str.splitlines`, `less`) may
# take for a line break or a control sequence: C0 controls, DEL, C1 controls (NEL U+0085
# among them), the Unicode line and paragraph separators, and the bidi embeddings and
# isolates that make a line display as something else than it holds.
_CONTROL_CODES = (
    *range(0x00, 0x20),
    0x7F,
    *range(0x80, 0xA0),
    0x2028,
    0x2029,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
)
_NAMED_ESCAPES = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}


def _escape_of(code: int) -> str:
    if code in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[code]
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


_LINE_ESCAPES = {code: _escape_of(code) for code in _CONTROL_CODES}
# The exception and stack text keep their newlines and indentation tabs (the formatter's
# own); any other control in them (from an exception message) is escaped.
_BLOCK_ESCAPES = {code: escape for code, escape in _LINE_ESCAPES.items() if code not in (9, 10)}
# json.dumps already writes C0 controls as \uXXXX; these it leaves raw with
# ensure_ascii=False. Outside strings a JSON line is ASCII, so this rewrite is lossless.
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in _CONTROL_CODES if code >= 0x7F}
BLOCK_INDENT = "  "
"""Prefix of every line of an exception or stack text in the text format."""


def escape_controls(text: str) -> str:
    """`text` on one line: control characters and line separators as escapes (`\\n`,
    `\\x1b`, `\\u2028`)."""
    return text.translate(_LINE_ESCAPES)


def _indented_block(text: str) -> str:
    """The exception or stack text: its own newlines kept, every line indented (so no line
    of it can pass for the start of a record), other controls escaped."""
    lines = text.rstrip("\n").translate(_BLOCK_ESCAPES).split("\n")
    return "\n".join(BLOCK_INDENT + line for line in lines)


class TextFormatter(logging.Formatter):
    """`2026-11-27 10:15:00,123 INFO    vestnik.erp [request_id=…]: message`.

    The line is one line whatever the values hold (`escape_controls`); an exception or stack
    follows on indented lines.
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__(TEXT_FORMAT)
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "log_context"):
            record.log_context = ""
        # logging.Formatter.format, with the escaping between its steps: the head line is
        # escaped whole, the appended blocks keep their newlines.
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        # Redacted before escaping: the phone and secret patterns see the text as written.
        parts = [escape_controls(self.redactor(self.formatMessage(record)))]
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            parts.append(_indented_block(self.redactor(record.exc_text)))
        if record.stack_info:
            parts.append(_indented_block(self.redactor(self.formatStack(record.stack_info))))
        return "\n".join(parts)


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
        return self.redactor(line).translate(_JSON_ESCAPES)


def secrets_from_settings(settings: Settings) -> list[str]:
    """Every secret value in `settings`: webhook secret, admin token, Telegram token and
    webhook secret (configured or derived), SMTP password, each SMS service's password,
    api_key and token, and the database URL's password."""
    from sqlalchemy.engine import make_url

    values: list[str | None] = [
        settings.webhook.secret,
        settings.admin.token,
        settings.metrics.token,
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


# --- refusal floods --------------------------------------------------------------------

REFUSAL_BURST = 10
"""Refusal warnings of one kind written per interval before the rest are counted instead."""
REFUSAL_INTERVAL_SECONDS = 10.0
REFUSAL_LOGGERS = ("handlers", "bot.telegram_app")
"""Whose WARNING records are refusals (these loggers and their children): every one of
them is caused by an outside request, so an outsider decides how many there are."""
_MAX_KINDS = 1000
"""Distinct (logger, template) windows kept; a message built with an f-string makes a new
template per value, so past this they share one window per logger."""
_OTHER_TEMPLATES = "<other messages>"
_SUMMARY = "suppressed %s similar warnings from %s in the last %s s: %s"


@dataclass(slots=True)
class _Window:
    start: float
    written: int = 0
    suppressed: int = 0


class RefusalRateLimit(logging.Filter):
    """A handler filter: at most `burst` WARNING records per (logger, message template) per
    `interval` seconds from the `loggers` (and their children) are written; the others are
    counted, and when the interval ends one line says how many were dropped:
    `suppressed 8,990 similar warnings from handlers.erp in the last 10 s: <template>`.

    The summary is written by a timer thread at the end of the interval (or by the next
    record of that kind, whichever comes first), so it comes out even if the flood stops
    for good. Other levels and loggers pass untouched. On the handler, not the logger, so
    other handlers (pytest's `caplog`) still see every record.
    """

    def __init__(
        self,
        handler: logging.Handler,
        *,
        burst: int = REFUSAL_BURST,
        interval: float = REFUSAL_INTERVAL_SECONDS,
        loggers: Iterable[str] = REFUSAL_LOGGERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._handler = handler
        self.burst = burst
        self.interval = interval
        self._loggers = tuple(loggers)
        self._clock = clock
        self._windows: dict[tuple[str, str], _Window] = {}
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._closed = False

    def _limited(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING:
            return False
        name = record.name
        return any(name == root or name.startswith(root + ".") for root in self._loggers)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._limited(record):
            return True
        # The template, not the merged message: one kind of refusal whatever its values.
        key = (record.name, str(record.msg))
        now = self._clock()
        due: list[tuple[tuple[str, str], _Window]] = []
        with self._lock:
            window = self._windows.get(key)
            if window is not None and now - window.start >= self.interval:
                del self._windows[key]
                if window.suppressed:
                    due.append((key, window))
                window = None
            if window is None:
                if len(self._windows) >= _MAX_KINDS:
                    due.extend(self._pop_expired(now))
                if len(self._windows) >= _MAX_KINDS:
                    key = (record.name, _OTHER_TEMPLATES)
                window = self._windows.setdefault(key, _Window(start=now))
            if window.written < self.burst:
                window.written += 1
                allowed = True
            else:
                window.suppressed += 1
                allowed = False
                if self._timer is None and not self._closed:
                    self._arm(window.start + self.interval - now)
        self._write_summaries(due)
        return allowed

    def _pop_expired(self, now: float) -> list[tuple[tuple[str, str], _Window]]:
        """Remove the windows whose interval is over; returns those with a count to tell."""
        expired = [
            (key, window)
            for key, window in self._windows.items()
            if now - window.start >= self.interval
        ]
        for key, _window in expired:
            del self._windows[key]
        return [(key, window) for key, window in expired if window.suppressed]

    def _arm(self, delay: float) -> None:
        # Called with the lock held. One timer at a time: windows all last `interval`, so
        # the one that ends first is the one that started first; `flush` re-arms for the rest.
        timer = threading.Timer(max(delay, 0.0), self.flush)
        timer.daemon = True  # never keeps the process alive; `close` flushes at exit
        self._timer = timer
        timer.start()

    def flush(self, *, everything: bool = False) -> None:
        """Write the summaries of the intervals that are over (all of them: `everything`)."""
        now = self._clock()
        with self._lock:
            self._timer = None
            if everything:
                due = [(key, window) for key, window in self._windows.items() if window.suppressed]
                self._windows.clear()
            else:
                due = self._pop_expired(now)
                pending = [w.start for w in self._windows.values() if w.suppressed]
                if pending and not self._closed:
                    self._arm(min(pending) + self.interval - now)
        self._write_summaries(due)

    def close(self) -> None:
        """Stop the timer and write what is still counted (at exit or when replaced)."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self.flush(everything=True)

    def _write_summaries(self, due: list[tuple[tuple[str, str], _Window]]) -> None:
        for (name, template), window in due:
            record = logging.LogRecord(
                __name__,
                logging.WARNING,
                __file__,
                0,
                _SUMMARY,
                (f"{window.suppressed:,}", name, f"{self.interval:g}", template[:200]),
                None,
            )
            # A fresh context: the summary belongs to no request, whichever one is current.
            contextvars.Context().run(self._handler.handle, record)


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
    refusal_burst: int = REFUSAL_BURST,
    refusal_interval: float = REFUSAL_INTERVAL_SECONDS,
) -> logging.Handler:
    """Send every log record to stderr (or `stream`), redacted, as text or JSON lines, with
    refusal warnings rate-limited (`RefusalRateLimit`: `refusal_burst` per kind per
    `refusal_interval` seconds, then a summary line).

    `secrets`: the values never to print (see `secrets_from_settings`). Returns the handler.
    """
    redactor = Redactor(secrets)
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    limiter = RefusalRateLimit(handler, burst=refusal_burst, interval=refusal_interval)
    # First, so a dropped record costs no redaction (and the template is still unmerged).
    handler.addFilter(limiter)
    handler.addFilter(RedactingFilter(redactor))
    if fmt == "json":
        handler.setFormatter(JsonFormatter(redactor))
    else:
        handler.setFormatter(TextFormatter(redactor))
    root = logging.getLogger()
    for previous in root.handlers:
        for old_filter in previous.filters:
            if isinstance(old_filter, RefusalRateLimit):
                atexit.unregister(old_filter.close)
                old_filter.close()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # What is still counted at exit is written before logging shuts down (atexit runs last
    # registered first, and logging registered its shutdown at import).
    atexit.register(limiter.close)
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
