"""`create_app(settings)`: the one place where everything is built and wired.

Long-lived resources are `cleanup_ctx` generators, so they start in order and stop in
reverse: the database first in and last out.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from bot.settings import Settings
from dispatch.ingest import EventIngestor
from dispatch.render import Renderer
from dispatch.runtime_config import RuntimeConfig
from handlers import admin, erp, health
from handlers.context import HttpContext
from handlers.errors import error_middleware
from handlers.keys import DB, HTTP_CONTEXT, INGESTOR, RENDERER, RUNTIME_CONFIG
from storage import migrate
from storage.database import create_database

logger = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)

# Admin calls (settings, client cards) are small; the ERP webhook enforces its own limit.
CLIENT_MAX_SIZE = 1024 * 1024


def create_app(settings: Settings, *, run_migrations: bool = True) -> web.Application:
    """Build the aiohttp application from `settings`; nothing starts until it runs."""
    app = web.Application(middlewares=[error_middleware], client_max_size=CLIENT_MAX_SIZE)
    app[SETTINGS] = settings
    app[admin.SMS_SERVICES] = tuple(settings.sms_services)
    app[HTTP_CONTEXT] = HttpContext(
        webhook_secret=settings.webhook.secret,
        webhook_tolerance_seconds=settings.webhook.tolerance_seconds,
        webhook_max_body_bytes=settings.webhook.max_body_bytes,
        admin_token=settings.admin.token,
    )
    renderer = Renderer()
    app[RENDERER] = renderer
    app[RUNTIME_CONFIG] = RuntimeConfig(
        notify=settings.notify,
        event_types=settings.event_types,
        sms_service_names=[service.name for service in settings.sms_services],
        has_webhook_secret=bool(settings.webhook.secret),
    )

    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        db = create_database(
            settings.database.url,
            pool_size=settings.database.pool_size,
            echo=settings.database.echo,
        )
        if run_migrations:
            await migrate.upgrade(db)
        app[DB] = db
        app[INGESTOR] = EventIngestor(
            db=db,
            config=app[RUNTIME_CONFIG],
            renderer=renderer,
            sms_available=bool(settings.sms_services),
        )
        try:
            yield
        finally:
            await db.dispose()

    app.cleanup_ctx.append(database_ctx)
    app.add_routes(health.routes)
    app.add_routes(erp.routes)
    app.add_routes(admin.routes)
    return app
