"""Typed application keys: how views (and the shell's own parts) reach the shared resources.

One module of keys, as aiohttp-demos' `typedefs.py`: every key whose value type the views'
layer can name lives here. The few typed with the shell's own classes (settings, the Telegram
runtime) are in `bot/keys.py`, which views never see.

One key per object: the delivery workers' doorbell is `WAKEUP` (the actions call it to make
a notification due at once), the scheduler is `SCHEDULER` (the jobs view runs jobs through
it as a `JobRunner`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from dispatch.config import SmsTestSettings
from dispatch.delivery.channels.sms.live import LiveProviders
from dispatch.delivery.wakeup import Wakeup
from dispatch.intake.ingest import EventIngestor
from dispatch.journal.service import JournalActions
from dispatch.journal.status_changes import StatusChanges
from dispatch.ops.metrics import Metrics
from dispatch.render.renderer import Renderer
from dispatch.render.versions import TemplateLibrary
from dispatch.runtime_config import RuntimeConfig
from handlers.common.context import HttpContext
from storage.database import Database


@dataclass(frozen=True, slots=True)
class ManualRun:
    job: str
    ran: bool
    """False: another run of the same job held the moment (nothing ran)."""
    result: dict[str, Any] | None
    error: str | None


class JobRunner(Protocol):
    """What the jobs view needs of the scheduler (`bot.scheduler.AppScheduler`)."""

    @property
    def job_names(self) -> Collection[str]: ...

    async def run_manually(self, name: str) -> ManualRun: ...


DB = web.AppKey("db", Database)
INGESTOR = web.AppKey("ingestor", EventIngestor)
RUNTIME_CONFIG = web.AppKey("runtime_config", RuntimeConfig)
RENDERER = web.AppKey("renderer", Renderer)
#: The event types' templates edited through the API (versions, history, revert).
TEMPLATE_LIBRARY = web.AppKey("template_library", TemplateLibrary)
HTTP_CONTEXT = web.AppKey("http_context", HttpContext)
#: The providers of the SMS services directory as it is now (rebuilt when it changes).
SMS_PROVIDERS = web.AppKey("sms_providers", LiveProviders)
STATUS_CHANGES = web.AppKey("status_changes", StatusChanges)
#: The journal's manual actions with their side effects (wake-up, prompts): built once.
JOURNAL_ACTIONS = web.AppKey("journal_actions", JournalActions)
METRICS = web.AppKey("metrics", Metrics)
#: Wakes the delivery workers when something makes a notification due (they also poll).
WAKEUP = web.AppKey("wakeup", Wakeup)
#: The `[test_sms]` settings: allowed countries and the daily cap (shared with the bot).
TEST_SMS_LIMITS = web.AppKey("test_sms_limits", SmsTestSettings)
#: Set while the bot runs: returns the bot's username (getMe, cached by aiogram).
BOT_USERNAME = web.AppKey[Callable[[], Awaitable[str]]]("telegram_bot_username")
#: Absent when the scheduler does not run in this process (`scheduler.enabled = false`).
SCHEDULER = web.AppKey("scheduler", JobRunner)
