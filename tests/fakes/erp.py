"""A loopback ERP endpoint for the presses of the ERP's buttons (`erp.callback_url`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from handlers.common import signature


class FakeErp:
    """Answers each POST with the next of `answers` (then 200), or never while `hang` is
    set; keeps every request's JSON body with whether its X-Vestnik-Signature verified
    under `secret`."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.answers: list[int] = []
        self.hang = False
        self.received: list[tuple[dict[str, Any], bool]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            signature.verify(self.secret, request.headers.get(signature.HEADER), raw)
            signed = True
        except signature.SignatureError:
            signed = False
        self.received.append((json.loads(raw), signed))
        if self.hang:
            await asyncio.sleep(3600)
        status = self.answers.pop(0) if self.answers else 200
        return web.json_response({"ok": status == 200}, status=status)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeErp]:
        app = web.Application()
        app.router.add_post("/vestnik/press", self.handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        self.url = str(server.make_url("/vestnik/press"))
        try:
            yield self
        finally:
            await server.close()
