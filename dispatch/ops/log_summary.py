"""One INFO line per time window instead of one line per event or send.

Under load, a log line per ERP event or per SMS costs a measurable share of its CPU (the
record, the formatting, the write: ~5 % of an event, bench/ingest.py) and floods the log
with lines nobody reads one by one. The single items go to DEBUG; at INFO, what happened
in the window is counted and written once when the window ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable


class WindowSummary:
    """Counts by key; `describe` turns a window's counts into the INFO line's text."""

    def __init__(
        self, logger: logging.Logger, seconds: float, describe: Callable[[Counter[str]], str]
    ) -> None:
        self._logger = logger
        self._seconds = seconds
        self._describe = describe
        self._counts: Counter[str] = Counter()
        self._timer: asyncio.TimerHandle | None = None

    def count(self, key: str, n: int = 1) -> None:
        self._counts[key] += n
        if self._timer is None:
            # A timer, not a task: nothing to stop at shutdown, and an idle process logs
            # nothing. The window starts with its first count.
            self._timer = asyncio.get_running_loop().call_later(self._seconds, self._log)

    def _log(self) -> None:
        self._timer = None
        counts, self._counts = self._counts, Counter()
        self._logger.info("%s", self._describe(counts))
