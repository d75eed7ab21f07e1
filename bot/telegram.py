"""The way to aiogram: the `Bot`, pointed at Telegram or at a local Bot API server, the
delivery channel over it, and the bot's runtime (its updates, by polling or webhook), each
built only when `telegram.token` is set.

Importing aiogram takes seconds and ~165 MB, so no module on the way of a process without a
bot imports it at its top (`serve` without a token, `migrate`, `journal`): the functions
here import it, and the modules built on it, when they build the bot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from bot.settings import Settings, TelegramSettings

if TYPE_CHECKING:
    from aiogram import Bot

    from dispatch.delivery.channels.telegram import TelegramChannel

REQUEST_TIMEOUT_SECONDS = 15.0


def create_bot(settings: TelegramSettings) -> Bot | None:
    """None when no token is configured (no bot; the reserve route applies)."""
    if not settings.token:
        return None
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    session = AiohttpSession(
        api=TelegramAPIServer.from_base(settings.api_base.rstrip("/")),
        timeout=REQUEST_TIMEOUT_SECONDS,
    )
    return Bot(settings.token, session=session)


def create_channel(bot: Bot | None) -> TelegramChannel | None:
    """Telegram delivery through `bot`; None without a bot."""
    if bot is None:
        return None
    from dispatch.delivery.channels.telegram import TelegramChannel

    return TelegramChannel(bot)


def setup_bot(app: web.Application, settings: Settings, *, poll: bool = True) -> None:
    """Add the bot's runtime (and webhook route) to `app`; nothing without a token."""
    if settings.telegram.token:
        from bot.telegram_app import setup_telegram

        setup_telegram(app, settings, poll=poll)
