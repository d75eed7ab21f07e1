"""Logging: readable lines by default, JSON lines when `log.format = "json"`.

- `context`: the ids on every line (`request_id`, `update_id`, …) and the aiohttp and
  aiogram middlewares that bind them;
- `redaction`: nothing sensitive reaches the output (secrets, bot tokens, URL passwords →
  `***`, phones masked);
- `formatting`: text and JSON lines, one record one line;
- `refusals`: refusal warnings rate-limited on the output, at most `REFUSAL_BURST` WARNING
  records per (logger, message template) per `REFUSAL_INTERVAL_SECONDS` from `handlers.*`
  and `bot.telegram_app`, then one summary line per interval (on the handler, so tests'
  `caplog` still sees every record);
- `setup`: `configure_logging`, which puts them together on the root logger.

The names callers use are importable from `bot.logs` itself.
"""

from __future__ import annotations

from bot.logs.context import (
    REQUEST_ID,
    REQUEST_ID_HEADER,
    bind_log_context,
    current_log_context,
    log_context,
    new_request_id,
    request_id_middleware,
    unbind_log_context,
    update_log_middleware,
)
from bot.logs.formatting import JsonFormatter, TextFormatter, escape_controls
from bot.logs.redaction import (
    REDACTED,
    RedactingFilter,
    Redactor,
    mask_phones,
    redact_also,
    secrets_from_settings,
)
from bot.logs.refusals import REFUSAL_BURST, REFUSAL_INTERVAL_SECONDS, RefusalRateLimit
from bot.logs.setup import configure_logging

__all__ = [
    "REDACTED",
    "REFUSAL_BURST",
    "REFUSAL_INTERVAL_SECONDS",
    "REQUEST_ID",
    "REQUEST_ID_HEADER",
    "JsonFormatter",
    "RedactingFilter",
    "Redactor",
    "RefusalRateLimit",
    "TextFormatter",
    "bind_log_context",
    "configure_logging",
    "current_log_context",
    "escape_controls",
    "log_context",
    "mask_phones",
    "new_request_id",
    "redact_also",
    "request_id_middleware",
    "secrets_from_settings",
    "unbind_log_context",
    "update_log_middleware",
]
