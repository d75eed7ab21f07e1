"""The application keys only the shell (`bot/`) reads: its settings, the aiogram `Bot` and
the Telegram channel over it, the delivery workers and service, the Telegram runtime.

Every key a view reads is in `handlers/common/keys.py`; views never import this module.
`TELEGRAM` is typed by what its readers use (`TelegramRuntime`), so this module needs
nothing from `bot.telegram_app`, which reads `BOT` from here. The aiogram types are imported
for typing only: a process without a bot never loads aiogram (see `bot.telegram`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from aiohttp import web

from bot.settings import Settings
from dispatch.delivery.service import DeliveryService
from dispatch.delivery.worker import Worker
from dispatch.erp_actions.buttons import ErpButtons
from dispatch.erp_actions.outbox import ErpOutbox

if TYPE_CHECKING:
    from aiogram import Bot

    from dispatch.delivery.channels.telegram import TelegramChannel
    from dispatch.journal.manager_prompts import ManagerPrompts


class TelegramRuntime(Protocol):
    """What the scheduler needs of the bot's runtime (`bot.telegram_app.TelegramBot`)."""

    @property
    def prompts(self) -> ManagerPrompts | None:
        """The managers' confirmation prompts, once the bot runs."""
        ...


SETTINGS = web.AppKey("settings", Settings)
#: None without `telegram.token` (no bot; the reserve route applies).
BOT: web.AppKey[Bot | None] = web.AppKey("bot")
#: Telegram delivery over `BOT`, for the workers and the alerts; None without a bot.
TELEGRAM_CHANNEL: web.AppKey[TelegramChannel | None] = web.AppKey("telegram_channel")
WORKERS = web.AppKey("workers", list[Worker])
DELIVERY = web.AppKey("delivery", DeliveryService)
#: Absent without `telegram.token`.
TELEGRAM = web.AppKey("telegram_bot", TelegramRuntime)
#: The ERP's buttons; None without `erp.callback_url`.
ERP_BUTTONS: web.AppKey[ErpButtons | None] = web.AppKey("erp_buttons")
#: The presses' outbox; absent without `erp.callback_url` or without workers.
ERP_OUTBOX = web.AppKey("erp_outbox", ErpOutbox)
