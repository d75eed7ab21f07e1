"""`GET /metrics`: Prometheus text format; behind a bearer token when `metrics.token` is set.

The token is checked in the view, not by matching the raw path in a proxy or a middleware:
aiohttp routes `/%6Detrics` (and any other spelling that decodes to `/metrics`) here too.
"""

from __future__ import annotations

import logging

from aiohttp import web

from dispatch.credentials import bearer_matches
from dispatch.ops.metrics import CONTENT_TYPE
from handlers.common.errors import ApiError
from handlers.common.keys import DB, HTTP_CONTEXT, METRICS

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()


def _refusal(request: web.Request) -> web.Response | None:
    """401 (with WWW-Authenticate) unless the scrape carries `metrics.token`, when one is set."""
    token = request.app[HTTP_CONTEXT].metrics_token
    if not token:
        return None  # public, as the contract lists it
    if bearer_matches(request.headers.get("Authorization", ""), token):
        return None
    logger.warning("/metrics refused from %s: missing or wrong bearer token", request.remote)
    response = ApiError(401, "unauthorized", "a valid bearer token is required").response()
    response.headers["WWW-Authenticate"] = 'Bearer realm="vestnik-metrics"'
    return response


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    registry = request.app[METRICS]
    try:
        await registry.refresh_journal(request.app[DB])
    except Exception as exc:
        # Still serve the process's own counters: a scrape must not fail with the database.
        logger.warning("journal figures unavailable for /metrics: %s", exc)
    response = web.Response(body=registry.render())
    response.headers["Content-Type"] = CONTENT_TYPE
    return response
