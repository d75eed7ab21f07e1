"""The Telegram bot inside the app: the aiogram Dispatcher, polling or webhook."""

from __future__ import annotations

from aiohttp import web

from bot.settings import Settings


def setup_telegram(app: web.Application, settings: Settings) -> None:
    """Add the bot's lifecycle (and webhook route) to `app`; nothing without a token."""
