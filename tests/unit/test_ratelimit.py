"""Send-rate limits as Telegram and the providers count them: a rolling window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.delivery.ratelimit import SAFETY, KeyedWindows, Pause, SlidingWindow
from dispatch.delivery.retry import RetryPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_thirty_per_second_then_waits_for_the_oldest_to_leave_the_window() -> None:
    clock = Clock()
    window = SlidingWindow(30, clock=clock)
    assert all(window.try_acquire() == 0 for _ in range(30))
    wait = window.try_acquire()
    assert wait == pytest.approx(SAFETY)
    clock.now += wait
    assert window.try_acquire() == 0


@given(
    rate=st.sampled_from([1.0, 2.0, 30.0, 0.5]),
    gaps=st.lists(st.floats(min_value=0, max_value=0.3), min_size=1, max_size=200),
)
def test_never_more_than_the_rate_in_any_one_second(rate: float, gaps: list[float]) -> None:
    clock = Clock()
    window = SlidingWindow(rate, clock=clock)
    sent: list[float] = []
    for gap in gaps:
        clock.now += gap
        wait = window.try_acquire()
        if wait == 0:
            sent.append(clock.now)
    limit = max(1, int(rate))
    for index, start in enumerate(sent):
        inside = [t for t in sent[index:] if t - start < limit / rate]
        assert len(inside) <= limit


def test_per_chat_windows_are_independent_and_bounded() -> None:
    clock = Clock()
    chats = KeyedWindows(1.0, clock=clock, max_keys=10)
    assert chats.try_acquire(1) == 0
    assert chats.try_acquire(2) == 0
    assert chats.try_acquire(1) > 0
    for chat in range(100, 200):
        clock.now += 1.1
        chats.try_acquire(chat)
    assert len(chats) <= 10


def test_pause_keeps_the_latest_deadline() -> None:
    clock = Clock()
    pause = Pause(clock=clock)
    pause.pause(10, "429")
    pause.pause(2, "shorter")
    assert pause.remaining() == 10
    assert pause.reason == "429"
    clock.now += 11
    assert pause.remaining() == 0


def test_backoff_grows_exponentially_with_jitter_and_respects_retry_after() -> None:
    policy = RetryPolicy(base_seconds=2, cap_seconds=300, rng=Random(7))
    delays = [policy.delay(attempt) for attempt in range(1, 9)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(300, 2 * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert policy.delay(1, retry_after=42) == 42


def test_gives_up_after_max_attempts_or_max_age() -> None:
    policy = RetryPolicy(max_attempts=8, max_age=timedelta(minutes=30))
    queued = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert policy.gives_up(attempts=7, queued_at=queued, retry_at=queued) is None
    assert "8 attempts" in (policy.gives_up(attempts=8, queued_at=queued, retry_at=queued) or "")
    late = queued + timedelta(minutes=31)
    assert "30 min" in (policy.gives_up(attempts=1, queued_at=queued, retry_at=late) or "")
