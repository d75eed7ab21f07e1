"""Send-rate limits: at most `count` sends in any window of `period` seconds.

A sliding log rather than a token bucket, because Telegram and the providers count sends in
a rolling window: a full bucket plus its refill would let nearly twice the rate through
within one second and earn a 429.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

Clock = Callable[[], float]


class Stamp:
    """When a send used its slot. Taken when the send starts and moved to when it ended,
    because the other side counts the request when it arrives, which may be any time in
    between (a slow connection, a busy event loop)."""

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at


# Sends are spaced a little wider than the limit so that timer jitter never lands one
# inside the other side's window.
SAFETY = 1.02


class SlidingWindow:
    """At most `count` events in any `period` seconds."""

    __slots__ = ("_clock", "_log", "count", "period")

    def __init__(self, per_second: float, *, clock: Clock = time.monotonic) -> None:
        if per_second <= 0:
            raise ValueError("the rate must be positive")
        self.count = max(1, math.floor(per_second))
        self.period = self.count / per_second * SAFETY
        self._log: deque[Stamp] = deque()
        self._clock = clock

    def wait_time(self) -> float:
        """Seconds until a send is allowed (0 when it is allowed now)."""
        now = self._clock()
        # The epsilon absorbs float rounding of `now + wait` computed by the caller.
        while self._log and now - self._log[0].at >= self.period - 1e-9:
            self._log.popleft()
        if len(self._log) < self.count:
            return 0.0
        # Stamps moved to a send's end may stand out of order: the latest one decides.
        oldest_needed = sorted(stamp.at for stamp in self._log)[len(self._log) - self.count]
        return max(0.0, self.period - (now - oldest_needed))

    def try_acquire(self) -> float:
        """Take a slot and return 0, or return the wait without taking one."""
        return self.acquire()[0]

    def acquire(self) -> tuple[float, Stamp | None]:
        """(0, the slot's stamp) when a send may start now, else (the wait, None).

        Call `done(stamp)` when the send has ended."""
        wait = self.wait_time()
        if wait > 0:
            return wait, None
        stamp = Stamp(self._clock())
        self._log.append(stamp)
        return 0.0, stamp

    def done(self, stamp: Stamp) -> None:
        stamp.at = max(stamp.at, self._clock())

    def idle(self) -> bool:
        now = self._clock()
        return all(now - stamp.at >= self.period for stamp in self._log)


class KeyedWindows:
    """One `SlidingWindow` per key (a chat), forgetting idle keys to stay bounded."""

    def __init__(
        self, per_second: float, *, clock: Clock = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self._per_second = per_second
        self._clock = clock
        self._max_keys = max_keys
        self._windows: OrderedDict[object, SlidingWindow] = OrderedDict()

    def try_acquire(self, key: object) -> float:
        return self.acquire(key)[0]

    def acquire(self, key: object) -> tuple[float, Stamp | None]:
        window = self._windows.get(key)
        if window is None:
            window = SlidingWindow(self._per_second, clock=self._clock)
            self._windows[key] = window
        else:
            self._windows.move_to_end(key)
        result = window.acquire()
        self._evict()
        return result

    def done(self, stamp: Stamp) -> None:
        stamp.at = max(stamp.at, self._clock())

    def wait_time(self, key: object) -> float:
        window = self._windows.get(key)
        return 0.0 if window is None else window.wait_time()

    def _evict(self) -> None:
        # Least recently used first; a window still in use stops the sweep (at most a
        # rate-limit's worth of chats are in use at any moment).
        while len(self._windows) > self._max_keys:
            oldest_key, oldest = next(iter(self._windows.items()))
            if not oldest.idle():
                break
            del self._windows[oldest_key]

    def __len__(self) -> int:
        return len(self._windows)


class Pause:
    """A channel-wide pause (a bot-wide 429, a provider out of money)."""

    __slots__ = ("_clock", "reason", "until")

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self.until = 0.0
        self.reason = ""

    def pause(self, seconds: float, reason: str) -> None:
        until = self._clock() + seconds
        if until > self.until:
            self.until = until
            self.reason = reason

    def remaining(self) -> float:
        return max(0.0, self.until - self._clock())
