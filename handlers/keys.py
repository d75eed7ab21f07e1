"""Typed application keys: how views reach the shared resources."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    pass

DB = web.AppKey["Database"]("db")
INGESTOR = web.AppKey["EventIngestor"]("ingestor")
RUNTIME_CONFIG = web.AppKey["RuntimeConfig"]("runtime_config")
RENDERER = web.AppKey["Renderer"]("renderer")
HTTP_CONTEXT = web.AppKey["HttpContext"]("http_context")
SMS_PROVIDERS = web.AppKey["dict[str, SmsProvider]"]("sms_providers")
