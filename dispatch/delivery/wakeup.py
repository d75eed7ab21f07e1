"""A doorbell: whoever queues work rings it; the workers of this process listen.

A ring may name the lanes that have new work (`telegram`, `sms`), so a new SMS does not send
the Telegram worker to the database for nothing; a ring without lanes wakes every worker.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

TELEGRAM_LANE = "telegram"
SMS_LANE = "sms"
LANES = (TELEGRAM_LANE, SMS_LANE)


def lane_of(channel: str | None) -> str:
    """The worker lane that delivers a notification planned for `channel`."""
    return TELEGRAM_LANE if channel == TELEGRAM_LANE else SMS_LANE


class Wakeup:
    def __init__(self) -> None:
        self._listeners: list[tuple[Callable[[], None], str | None]] = []

    def subscribe(self, listener: Callable[[], None], lane: str | None = None) -> None:
        """Call `listener` on rings for `lane` (None: on every ring)."""
        self._listeners.append((listener, lane))

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        self._listeners = [entry for entry in self._listeners if entry[0] != listener]

    def __call__(self, lanes: Collection[str] | None = None) -> None:
        for listener, lane in tuple(self._listeners):
            if lanes is None or lane is None or lane in lanes:
                listener()

    def ring_payload(self, payload: str) -> None:
        """Ring for a NOTIFY payload: comma-separated lanes, empty for all."""
        named = {lane for lane in payload.split(",") if lane in LANES}
        self(named or None)
