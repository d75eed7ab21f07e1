"""News of status changes made outside the delivery worker (manual actions, expiry).

The bot listens to edit the managers' prompts about those notifications: a confirmation
pressed in the admin API, or cancelled by the scheduler, must not leave live «Отправить»
buttons in a manager's chat.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

logger = logging.getLogger(__name__)

Listener = Callable[[Sequence[int]], None]


class StatusChanges:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def __call__(self, notification_ids: Sequence[int]) -> None:
        """Tell every listener (after the change's commit); a listener's failure is logged,
        never the caller's problem."""
        if not notification_ids:
            return
        for listener in tuple(self._listeners):
            try:
                listener(notification_ids)
            except Exception:
                logger.exception("a status-change listener failed")
