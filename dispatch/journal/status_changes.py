"""News of status changes made outside the delivery worker (manual actions, expiry).

The bot listens to edit the managers' prompts about those notifications: a confirmation
pressed in the admin API, or cancelled by the scheduler, must not leave live «Отправить»
buttons in a manager's chat.

Two ways to tell it: `changes(ids)` has the prompts edited in the background (the admin API
and the scheduler are not held up by Telegram); `await changes.settle(id, …)` has them
edited before it returns, naming the manager who acted (an action from the bot itself,
whose reply should follow the edit).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from dispatch.conversation.subscriptions import Identity

logger = logging.getLogger(__name__)

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
    """Hands status changes to the bot's prompts while a bot runs; without a bot nothing
    needs to hear of them."""

    def __init__(self) -> None:
        self._prompts: PromptSettler | None = None

    def attach_prompts(self, prompts: PromptSettler) -> None:
        """The bot's prompts, while the bot runs (one bot per process)."""
        self._prompts = prompts

    def detach_prompts(self, prompts: PromptSettler) -> None:
        if self._prompts is prompts:
            self._prompts = None

    def __call__(self, notification_ids: Sequence[int]) -> None:
        """Have the prompts about these notifications edited in the background (after the
        change's commit); a failure is logged, never the caller's problem."""
        if not notification_ids or self._prompts is None:
            return
        try:
            self._prompts.on_status_changed(notification_ids)
        except Exception:
            logger.exception("editing the prompts after a status change failed")

    async def settle(
        self,
        notification_id: int,
        *,
        pressed: tuple[int, int] | None = None,
        by: Identity | None = None,
    ) -> None:
        """Have the attached prompts edited now, naming who acted (nothing without a bot)."""
        if self._prompts is not None:
            await self._prompts.settle(notification_id, pressed=pressed, by=by)
