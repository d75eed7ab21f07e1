"""Update-level middlewares of the bot's Dispatcher (outer, in this order):

1. `InFlight` counts the updates being handled, so shutdown can wait for them before the
   database goes away.
2. `UpdateDedup` records every `update_id` in `telegram_updates` first and drops one seen
   before: Telegram redelivers a webhook update it thinks failed (and a restarted poller may
   fetch one again), and a redelivery must not link, relay or act twice. When handling
   fails, the id is forgotten again so the redelivery can do the work. Without the
   scheduler (which prunes the table), old ids are pruned here, at most once an hour.
3. `IdentityMiddleware` puts `identity` (what the sender and the chat are linked to) into
   the handler data.

The dependencies themselves (`db`, `runtime_config`, `texts`, `relay`, `prompts`, …) are the
Dispatcher's workflow data, set when the bot starts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Chat, TelegramObject, Update, User

from dispatch.conversation.subscriptions import identify
from storage import inbox
from storage.database import Database
from storage.types import utcnow

logger = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

PRUNE_INTERVAL_SECONDS = 3600.0


class InFlight(BaseMiddleware):
    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        self._count += 1
        self._idle.clear()
        try:
            return await handler(event, data)
        finally:
            self._count -= 1
            if self._count == 0:
                self._idle.set()

    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109 - a grace period
        """Wait until no update is being handled; False when `timeout` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


class UpdateDedup(BaseMiddleware):
    def __init__(self, *, prune_after: timedelta | None) -> None:
        self._prune_after = prune_after
        self._last_prune = 0.0

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        db: Database = data["db"]
        async with db.transaction() as session:
            fresh = await inbox.remember_update(session, event.update_id, utcnow())
        if not fresh:
            logger.info("update %s was handled before: ignored", event.update_id)
            return None
        try:
            result = await handler(event, data)
        except Exception:
            async with db.transaction() as session:
                await inbox.forget_update(session, event.update_id)
            raise
        await self._maybe_prune(db)
        return result

    async def _maybe_prune(self, db: Database) -> None:
        if self._prune_after is None:
            return
        now = time.monotonic()
        if now - self._last_prune < PRUNE_INTERVAL_SECONDS and self._last_prune:
            return
        self._last_prune = now
        try:
            async with db.transaction() as session:
                pruned = await inbox.prune_updates(session, utcnow() - self._prune_after)
        except Exception:
            logger.exception("pruning handled Telegram update ids failed")
            return
        if pruned:
            logger.info("pruned %d handled Telegram update id(s)", pruned)


class IdentityMiddleware(BaseMiddleware):
    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        chat: Chat | None = data.get("event_chat")
        data["identity"] = await identify(
            data["db"],
            user_id=user.id if user is not None else None,
            chat_id=chat.id if chat is not None else None,
        )
        return await handler(event, data)
