"""`configure_logging`: one handler on the root logger, redacted, rate-limited, text or
JSON."""

from __future__ import annotations

import atexit
import logging
import sys
from collections.abc import Iterable
from typing import IO

from bot.logs.formatting import JsonFormatter, TextFormatter
from bot.logs.redaction import RedactingFilter, Redactor, learnt_secrets
from bot.logs.refusals import REFUSAL_BURST, REFUSAL_INTERVAL_SECONDS, RefusalRateLimit


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
    redactor = Redactor([*secrets, *learnt_secrets()])
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
