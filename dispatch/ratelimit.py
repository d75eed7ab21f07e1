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
        self._log: deque[float] = deque()
        self._clock = clock

    def wait_time(self) -> float:
        """Seconds until a send is allowed (0 when it is allowed now)."""
        now = self._clock()
        # The epsilon absorbs float rounding of `now + wait` computed by the caller.
        while self._log and now - self._log[0] >= self.period - 1e-9:
            self._log.popleft()
        if len(self._log) < self.count:
            return 0.0
        return self.period - (now - self._log[0])

    def try_acquire(self) -> float:
        """Take a slot and return 0, or return the wait without taking one."""
        wait = self.wait_time()
        if wait <= 0:
            self._log.append(self._clock())
        return wait

    def idle(self) -> bool:
        now = self._clock()
        return not self._log or now - self._log[-1] >= self.period


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
        window = self._windows.get(key)
        if window is None:
            window = SlidingWindow(self._per_second, clock=self._clock)
            self._windows[key] = window
        else:
            self._windows.move_to_end(key)
        wait = window.try_acquire()
        self._evict()
        return wait

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
