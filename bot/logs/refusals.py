"""Refusal floods: an outsider decides how many refusal warnings there are, so past a burst
they are counted, not written (`RefusalRateLimit`)."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

SUMMARY_LOGGER = "bot.logs"
"""The logger name of the summary lines (kept from when this was one module: log readers
and alert rules match it)."""

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
                SUMMARY_LOGGER,
                logging.WARNING,
                __file__,
                0,
                _SUMMARY,
                (f"{window.suppressed:,}", name, f"{self.interval:g}", template[:200]),
                None,
            )
            # A fresh context: the summary belongs to no request, whichever one is current.
            contextvars.Context().run(self._handler.handle, record)
