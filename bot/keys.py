"""The application keys only the shell (`bot/`) reads: its settings, the aiogram `Bot`, the
delivery workers and service, the Telegram runtime.

Every key a view reads is in `handlers/common/keys.py`; views never import this module.
`TELEGRAM` is typed by what its readers use (`TelegramRuntime`), so this module needs
nothing from `bot.telegram_app`, which reads `BOT` from here.
"""

from __future__ import annotations

from typing import Protocol

from aiogram import Bot
from aiohttp import web

from bot.settings import Settings
from dispatch.delivery.service import DeliveryService
from dispatch.delivery.worker import Worker
from dispatch.journal.manager_prompts import ManagerPrompts


class TelegramRuntime(Protocol):
    """What the scheduler needs of the bot's runtime (`bot.telegram_app.TelegramBot`)."""

    @property
    def prompts(self) -> ManagerPrompts | None:
        """The managers' confirmation prompts, once the bot runs."""
        ...


SETTINGS = web.AppKey("settings", Settings)
#: None without `telegram.token` (no bot; the reserve route applies).
BOT = web.AppKey[Bot | None]("bot")
WORKERS = web.AppKey("workers", list[Worker])
DELIVERY = web.AppKey("delivery", DeliveryService)
#: Absent without `telegram.token`.
TELEGRAM = web.AppKey("telegram_bot", TelegramRuntime)
