"""The aiogram `Bot`, pointed at Telegram or at a local Bot API server, and the secret of its
webhook (the log redaction needs it too, without the whole bot runtime)."""

from __future__ import annotations

import hashlib
import hmac

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


def webhook_secret(settings: TelegramSettings) -> str:
    """The configured secret, or one derived from the token (the same on every replica)."""
    if settings.webhook_secret:
        return settings.webhook_secret
    assert settings.token
    return hmac.new(
        settings.token.encode(), b"vestnik telegram webhook", hashlib.sha256
    ).hexdigest()
