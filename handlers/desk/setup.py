"""`setup_desk(app, config)`: the desk's routes, keys and live feed in the app."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from handlers.common.keys import INGESTOR
from handlers.desk import journal, live, signin, static
from handlers.desk.admin import balance, clients, event_types, sms_services
from handlers.desk.admin import settings as settings_page
from handlers.desk.config import DESK, DESK_FEED, DESK_LINKS, DeskConfig
from handlers.desk.links import DeskLinks
from handlers.desk.live_feed import LiveFeed


def setup_desk(app: web.Application, config: DeskConfig) -> None:
    """Add the desk to `app`; call after the database's cleanup context is appended (the
    live feed subscribes to the ingestor it builds)."""
    app[DESK] = config
    app[DESK_LINKS] = DeskLinks(base=config.link_base, minutes=config.link_minutes)
    bells = LiveFeed()
    app[DESK_FEED] = bells

    async def feed_ctx(app: web.Application) -> AsyncIterator[None]:
        app[INGESTOR].subscribe(bells.ring)
        yield

    async def stop_streams(app: web.Application) -> None:
        # Before the server waits for open requests: an event stream never ends by itself.
        bells.close()

    app.cleanup_ctx.append(feed_ctx)
    app.on_shutdown.append(stop_streams)
    app.router.add_get(static.PATH, static.serve)
    app.add_routes(signin.routes)
    app.add_routes(journal.routes)
    app.add_routes(live.routes)
    app.add_routes(settings_page.routes)
    app.add_routes(event_types.routes)
    app.add_routes(clients.routes)
    app.add_routes(sms_services.routes)
    app.add_routes(balance.routes)
