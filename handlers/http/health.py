"""`/healthz` (the process answers) and `/readyz` (the database answers)."""

from __future__ import annotations

import asyncio
from typing import Literal

from aiohttp import web

from handlers.common.answers import Answer
from handlers.common.errors import error_response
from handlers.common.keys import DB

routes = web.RouteTableDef()

READY_TIMEOUT_SECONDS = 3.0


class Health(Answer):
    """The process answers."""

    status: Literal["ok"]


class Ready(Answer):
    """The database answers."""

    status: Literal["ready"]
    database: Literal["postgresql", "sqlite"]


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return Health(status="ok").response()


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    try:
        await asyncio.wait_for(request.app[DB].ping(), READY_TIMEOUT_SECONDS)
    except Exception:
        return error_response(503, "storage_unavailable", "the database is not reachable")
    return Ready.model_validate(
        {"status": "ready", "database": request.app[DB].dialect}
    ).response()
