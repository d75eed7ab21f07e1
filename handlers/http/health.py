"""`/healthz` (the process answers) and `/readyz` (the database answers)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from handlers.common.errors import error_response
from handlers.common.keys import DB

routes = web.RouteTableDef()

READY_TIMEOUT_SECONDS = 3.0


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    try:
        await asyncio.wait_for(request.app[DB].ping(), READY_TIMEOUT_SECONDS)
    except Exception:
        return error_response(503, "storage_unavailable", "the database is not reachable")
    return web.json_response({"status": "ready", "database": request.app[DB].dialect})
