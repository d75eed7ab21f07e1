"""News of status changes made outside the delivery worker (manual actions, expiry).

The bot listens to edit the managers' prompts about those notifications: a confirmation
pressed in the admin API, or cancelled by the scheduler, must not leave live «Отправить»
buttons in a manager's chat.

Two ways to hear it: `changes(ids)` tells every listener, which works in the background (the
admin API and the scheduler are not held up by Telegram); `await changes.settle(id, …)` has
the attached prompts edited before it returns, naming the manager who acted (an action
from the bot itself, whose reply should follow the edit).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from dispatch.conversation.subscriptions import Identity

logger = logging.getLogger(__name__)

Listener = Callable[[Sequence[int]], None]


class PromptSettler(Protocol):
    """The managers' prompts (`ManagerPrompts`), as the signal uses them."""

    def on_status_changed(self, notification_ids: Sequence[int]) -> None:
        """Edit the prompts about these notifications, in the background."""
        ...

    async def settle(
        self,
        notification_id: int,
        *,
        pressed: tuple[int, int] | None = None,
        by: Identity | None = None,
    ) -> None:
        """Edit the prompts about the notification (and the pressed one) now."""
        ...


class StatusChanges:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._prompts: PromptSettler | None = None

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def attach_prompts(self, prompts: PromptSettler) -> None:
        """The bot's prompts, while the bot runs (one bot per process)."""
        self._prompts = prompts

    def detach_prompts(self, prompts: PromptSettler) -> None:
        if self._prompts is prompts:
            self._prompts = None

    def __call__(self, notification_ids: Sequence[int]) -> None:
        """Tell every listener (after the change's commit); a listener's failure is logged,
        never the caller's problem."""
        if not notification_ids:
            return
        listeners: list[Listener] = list(self._listeners)
        if self._prompts is not None:
            listeners.append(self._prompts.on_status_changed)
        for listener in listeners:
            try:
                listener(notification_ids)
            except Exception:
                logger.exception("a status-change listener failed")

    async def settle(
        self,
        notification_id: int,
        *,
        pressed: tuple[int, int] | None = None,
        by: Identity | None = None,
    ) -> None:
        """Have the attached prompts edited now (nothing without a bot). Only the prompts:
        plain listeners hear of it through `__call__`."""
        if self._prompts is not None:
            await self._prompts.settle(notification_id, pressed=pressed, by=by)
