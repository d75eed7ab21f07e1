"""The aiogram `Bot`, pointed at Telegram or at a local Bot API server."""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.settings import TelegramSettings

REQUEST_TIMEOUT_SECONDS = 15.0


def create_bot(settings: TelegramSettings) -> Bot | None:
    """None when no token is configured (no bot; the reserve route applies)."""
    if not settings.token:
        return None
    session = AiohttpSession(
        api=TelegramAPIServer.from_base(settings.api_base.rstrip("/")),
        timeout=REQUEST_TIMEOUT_SECONDS,
    )
    return Bot(settings.token, session=session)
