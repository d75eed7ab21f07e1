"""A doorbell: whoever queues work rings it; the workers of this process listen."""

from __future__ import annotations

from collections.abc import Callable


class Wakeup:
    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def __call__(self) -> None:
        for listener in tuple(self._listeners):
            listener()
