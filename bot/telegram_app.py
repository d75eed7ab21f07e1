"""The Telegram bot inside the app: the aiogram Dispatcher, polling or webhook.

- The Dispatcher and its routers (`handlers.bot_manager`, `handlers.bot_client`,
  `handlers.bot_chat`, in that order) are built with the app; the dependencies (`db`,
  `runtime_config`, `texts`, `relay`, `prompts`, `journal`, `sms_providers`, `test_sms_limits`,
  `desk_links`) become its workflow data when the bot starts, after the database and the Bot exist.
- **polling** (default): `dp.start_polling(bot, handle_signals=False,
  close_bot_session=False)` as a task of a `cleanup_ctx`, restarted with a backoff if it
  dies (for instance when Telegram is unreachable at start). One poller per token.
- **webhook**: at start `setWebhook(<http.public_url><telegram.webhook_path>, secret)`; the
  route answers 401 (the contract's error body) without the right
  `X-Telegram-Bot-Api-Secret-Token`. The secret is `telegram.webhook_secret`, or, when none
  is configured, one derived from the token, so every replica sets and checks the same one.
  The webhook is never deleted at stop: other replicas keep serving it.
- Shutdown stops taking updates, lets the ones in hand finish (a few seconds), then lets
  the managers' prompts in flight finish, before the Bot session and the database close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.methods import TelegramMethod
from aiogram.webhook.aiohttp_server import BaseRequestHandler, setup_application
from aiohttp import web
from pydantic import ValidationError

from bot.keys import BOT, ERP_BUTTONS, TELEGRAM
from bot.logs import update_log_middleware
from bot.settings import ConfigError, Settings
from dispatch.conversation.bot_texts import BotTexts
from dispatch.conversation.chat_relay import ChatRelay
from dispatch.credentials import same_secret
from dispatch.journal.manager_prompts import ManagerPrompts
from handlers.common.errors import error_response
from handlers.common.keys import (
    BOT_USERNAME,
    DB,
    INGESTOR,
    JOURNAL_ACTIONS,
    RUNTIME_CONFIG,
    SMS_PROVIDERS,
    STATUS_CHANGES,
)
from handlers.desk.config import DESK_LINKS
from handlers.telegram import chat as bot_chat
from handlers.telegram import client as bot_client
from handlers.telegram import manager as bot_manager
from handlers.telegram.middlewares import IdentityMiddleware, InFlight, UpdateDedup

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
POLLING_TIMEOUT_SECONDS = 25
DRAIN_SECONDS = 5.0
RESTART_DELAYS = (1.0, 2.0, 5.0, 15.0, 60.0)


def build_dispatcher(*, prune_after: timedelta | None) -> tuple[Dispatcher, InFlight]:
    """The Dispatcher with its middlewares and routers (no dependencies yet)."""
    dispatcher = Dispatcher(name="vestnik")
    in_flight = InFlight()
    dispatcher.update.outer_middleware(update_log_middleware)
    dispatcher.update.outer_middleware(in_flight)
    dispatcher.update.outer_middleware(UpdateDedup(prune_after=prune_after))
    dispatcher.update.outer_middleware(IdentityMiddleware())
    dispatcher.include_routers(
        bot_manager.build_router(), bot_client.build_router(), bot_chat.build_router()
    )
    return dispatcher, in_flight


class WebhookHandler(BaseRequestHandler):
    """aiogram's webhook view for the app's one Bot, which exists only once the app runs.

    Updates are handled before the answer (not in the background), so a failure answers
    500 and Telegram delivers the update again (the dedup middleware then lets it through).
    """

    def __init__(self, dispatcher: Dispatcher, runtime: TelegramBot, secret: str) -> None:
        super().__init__(dispatcher=dispatcher, handle_in_background=False)
        self._runtime = runtime
        self._secret = secret

    def verify_secret(self, telegram_secret_token: str, bot: Bot) -> bool:
        return same_secret(telegram_secret_token, self._secret)

    async def resolve_bot(self, request: web.Request) -> Bot:
        bot = self._runtime.bot
        if bot is None:
            raise web.HTTPServiceUnavailable()
        return bot

    async def close(self) -> None:
        """Nothing: the Bot's session belongs to the app's channels context."""

    async def handle(self, request: web.Request) -> web.Response:
        bot = await self.resolve_bot(request)
        if not self.verify_secret(request.headers.get(SECRET_HEADER, ""), bot):
            logger.warning("telegram webhook refused from %s: wrong secret", request.remote)
            return error_response(
                401, "unauthorized", f"a valid {SECRET_HEADER} header is required"
            )
        try:
            update = await request.json(loads=bot.session.json_loads)
        except ValueError:
            return error_response(400, "invalid_json", "the body is not valid JSON")
        if not isinstance(update, dict):
            return error_response(422, "validation_error", "the body must be a JSON object")
        try:
            result: TelegramMethod[Any] | None = await self.dispatcher.feed_webhook_update(
                bot, update, **self.data
            )
        except ValidationError:
            return error_response(422, "validation_error", "the body is not a Telegram Update")
        return web.Response(body=self._build_response_writer(bot=bot, result=result))


class TelegramBot:
    """The bot's lifecycle within one app."""

    def __init__(self, settings: Settings, *, poll: bool = True) -> None:
        self._settings = settings
        self._poll_updates = poll
        keep = timedelta(days=settings.scheduler.telegram_updates_keep_days)
        # The scheduler's retention job prunes handled update ids; without it, do it here.
        self.dispatcher, self._in_flight = build_dispatcher(
            prune_after=None if settings.scheduler.enabled else keep
        )
        self.bot: Bot | None = None
        self.prompts: ManagerPrompts | None = None
        self._polling: asyncio.Task[None] | None = None

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        bot = app[BOT]
        if bot is None:
            yield
            return
        self.bot = bot
        db = app[DB]
        texts = BotTexts()
        prompts = ManagerPrompts(db=db, bot=bot, texts=texts)
        self.prompts = prompts
        self.dispatcher.workflow_data.update(
            db=db,
            runtime_config=app[RUNTIME_CONFIG],
            texts=texts,
            relay=ChatRelay(db=db, bot=bot, texts=texts),
            prompts=prompts,
            journal=app[JOURNAL_ACTIONS],
            sms_providers=app[SMS_PROVIDERS],
            test_sms_limits=self._settings.test_sms,
            desk_links=app[DESK_LINKS],
            erp_buttons=app[ERP_BUTTONS],
        )
        app[INGESTOR].subscribe(prompts.on_ingested)
        app[STATUS_CHANGES].attach_prompts(prompts)

        async def username() -> str:
            me = await bot.me()
            if not me.username:
                raise RuntimeError("getMe returned a bot without a username")
            return me.username

        app[BOT_USERNAME] = username
        if self._settings.telegram.mode == "webhook":
            await self._set_webhook(bot)
        elif self._poll_updates:
            self._polling = asyncio.create_task(self._poll(bot), name="telegram-polling")
        try:
            yield
        finally:
            await self._stop_polling()
            if not await self._in_flight.drain(DRAIN_SECONDS):
                logger.warning("telegram updates still in hand after %s s", DRAIN_SECONDS)
            app[STATUS_CHANGES].detach_prompts(prompts)
            await prompts.close()
            self.bot = None

    async def _set_webhook(self, bot: Bot) -> None:
        url = self._settings.telegram_webhook_url()
        try:
            await bot.set_webhook(
                url=url,
                secret_token=self._settings.telegram.secret_token(),
                allowed_updates=self.dispatcher.resolve_used_update_types(),
            )
        except Exception as exc:
            # The app still serves; an earlier setWebhook (or another replica's) may hold.
            logger.error("setWebhook %s failed: %s", url, exc)
            return
        logger.info("telegram webhook set to %s", url)

    async def _poll(self, bot: Bot) -> None:
        with contextlib.suppress(Exception):
            # A webhook left from webhook mode would make getUpdates fail with 409.
            await bot.delete_webhook(drop_pending_updates=False)
        failures = 0
        while True:
            try:
                await self.dispatcher.start_polling(
                    bot,
                    handle_signals=False,
                    close_bot_session=False,
                    polling_timeout=POLLING_TIMEOUT_SECONDS,
                )
                return  # stopped on purpose
            except Exception as exc:
                delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
                failures += 1
                logger.error("telegram polling stopped (%s); restarting in %s s", exc, delay)
            await asyncio.sleep(delay)

    async def _stop_polling(self) -> None:
        task = self._polling
        if task is None:
            return
        self._polling = None
        if not task.done():
            with contextlib.suppress(RuntimeError, TimeoutError):
                # RuntimeError: not polling right now (starting, or waiting to restart).
                await asyncio.wait_for(self.dispatcher.stop_polling(), DRAIN_SECONDS)
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def setup_telegram(app: web.Application, settings: Settings, *, poll: bool = True) -> None:
    """Add the bot's lifecycle (and webhook route) to `app`; nothing without a token.

    Called through `bot.telegram.setup_bot`, so that only a process with a bot imports this
    module and aiogram.
    """
    telegram = settings.telegram
    if not telegram.token:
        return
    runtime = TelegramBot(settings, poll=poll)
    app[TELEGRAM] = runtime
    if telegram.mode == "webhook":
        problem = settings.telegram_webhook_problem()
        if problem:
            raise ConfigError(problem)
        # The secret's characters are the settings' rule (`TelegramSecret`); a derived one is hex.
        handler = WebhookHandler(runtime.dispatcher, runtime, telegram.secret_token())
        handler.register(app, path=telegram.webhook_route())
        setup_application(app, runtime.dispatcher)
    app.cleanup_ctx.append(runtime.lifecycle)
