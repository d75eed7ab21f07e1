"""`GET /metrics`: Prometheus text format."""

from __future__ import annotations

import logging

from aiohttp import web

from dispatch.metrics import CONTENT_TYPE, Metrics
from handlers.keys import DB

logger = logging.getLogger(__name__)

METRICS = web.AppKey("metrics", Metrics)

routes = web.RouteTableDef()


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS]
    try:
        await registry.refresh_journal(request.app[DB])
    except Exception as exc:
        # Still serve the process's own counters: a scrape must not fail with the database.
        logger.warning("journal figures unavailable for /metrics: %s", exc)
    response = web.Response(body=registry.render())
    response.headers["Content-Type"] = CONTENT_TYPE
    return response
