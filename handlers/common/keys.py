"""Typed application keys: how views reach the shared resources."""

from __future__ import annotations

from aiohttp import web

from dispatch.delivery.channels.sms.base import SmsProvider
from dispatch.intake.ingest import EventIngestor
from dispatch.journal.status_changes import StatusChanges
from dispatch.render.renderer import Renderer
from dispatch.runtime_config import RuntimeConfig
from handlers.common.context import HttpContext
from storage.database import Database

DB = web.AppKey("db", Database)
INGESTOR = web.AppKey("ingestor", EventIngestor)
RUNTIME_CONFIG = web.AppKey("runtime_config", RuntimeConfig)
RENDERER = web.AppKey("renderer", Renderer)
HTTP_CONTEXT = web.AppKey("http_context", HttpContext)
SMS_PROVIDERS = web.AppKey("sms_providers", dict[str, SmsProvider])
STATUS_CHANGES = web.AppKey("status_changes", StatusChanges)
