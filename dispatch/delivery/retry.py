"""Retry policy: exponential backoff with full jitter, bounded in tries and in time."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 8
    max_age: timedelta = timedelta(minutes=30)
    base_seconds: float = 2.0
    cap_seconds: float = 300.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds before try number `attempts + 1`; never earlier than `retry_after`."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        jittered = self.rng.uniform(ceiling / 2, ceiling)
        return max(jittered, retry_after or 0.0)

    def gives_up(self, *, attempts: int, queued_at: datetime, retry_at: datetime) -> str | None:
        """Why no further try is allowed, or None while tries remain."""
        if attempts >= self.max_attempts:
            return f"gave up after {attempts} attempts"
        if retry_at - queued_at > self.max_age:
            minutes = int(self.max_age.total_seconds() // 60)
            return f"gave up: the next try would be more than {minutes} min after queueing"
        return None
