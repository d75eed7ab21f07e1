"""Fake generic `http` SMS gateway (CONTRACT.md §1 plus the extensions documented in
dispatch/delivery/channels/sms/http.py).

`POST /sms` JSON `{"phone", "text", "sender", "id"}` with `Authorization: Bearer <token>` →
200 `{"id": "<gateway id>", "parts", "cost"}`; `GET /sms/balance` → `{"balance", "currency"}`.
Refusals are `{"error": "<code>", "message"}` with 401/402/422/429. Callbacks are JSON
`{"id", "status", "reason"?}` with the bearer token.
"""

from __future__ import annotations

import json
from decimal import Decimal
from itertools import count
from typing import Any

import aiohttp
from aiohttp import hdrs, web

from tests.fakes.sms import FakeCallback, FakeSmsServer, json_response

RATE_LIMIT_RETRY_AFTER = "3"
_FAILURES: dict[str, tuple[int, str, str]] = {
    "no_money": (402, "no_money", "insufficient funds"),
    "invalid_number": (422, "invalid_number", "not a mobile number"),
    "auth": (401, "auth", "bad token"),
    "rate_limit": (429, "rate_limit", "slow down"),
    "reject": (422, "rejected", "text refused by the operator"),
}


def _error(kind: str) -> web.Response:
    status, code, message = _FAILURES[kind]
    headers = {"Retry-After": RATE_LIMIT_RETRY_AFTER} if kind == "rate_limit" else None
    return json_response({"error": code, "message": message}, status=status, headers=headers)


class FakeHttpGateway(FakeSmsServer):
    """A generic JSON gateway; `reply_id=False` makes it answer without an id."""

    base_path = "/sms"

    def __init__(
        self,
        *,
        token: str | None = "gateway-token",
        balance: Decimal = Decimal("1000.00"),
        latency: float = 0.0,
        rate_limit: float | None = None,
    ) -> None:
        super().__init__(balance=balance, latency=latency, rate_limit=rate_limit)
        self.token = token
        self.reply_id = True
        self.report_before_reply: str | None = None
        """A receipt URL: the gateway delivers at once and calls it back before it even
        answers the send (a provider faster than our commit)."""
        self.early_report_statuses: list[int] = []
        self._ids = count(1)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/sms", self._send)
        app.router.add_get("/sms/balance", self._balance)

    async def failure_response(self, kind: str, request: web.Request) -> web.Response:
        return _error(kind)

    def _authorised(self, request: web.Request) -> bool:
        return self.token is None or (
            request.headers.get(hdrs.AUTHORIZATION) == f"Bearer {self.token}"
        )

    async def _send(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error("auth")
        try:
            body: Any = json.loads(await request.read())
        except ValueError:
            return json_response({"error": "bad_request", "message": "not JSON"}, status=400)
        if not isinstance(body, dict) or not body.get("text"):
            return json_response({"error": "bad_request", "message": "text required"}, status=400)
        phone = str(body.get("phone", ""))
        if not phone.startswith("+") or not self.valid_number(phone):
            return _error("invalid_number")
        parts, cost = self.price(body["text"])
        if cost > self.balance:
            return _error("no_money")
        gateway_id = f"gw-{next(self._ids)}"
        client_id = None if body.get("id") is None else str(body["id"])
        self.record(
            gateway_id if self.reply_id else client_id or gateway_id,
            phone=phone,
            text=body["text"],
            sender=body.get("sender"),
            client_id=client_id,
        )
        if self.report_before_reply is not None:
            self.deliver(gateway_id)
            async with aiohttp.ClientSession() as http:
                status, _ = await self.callback(gateway_id, self.report_before_reply).post(http)
            self.early_report_statuses.append(status)
        reply: dict[str, Any] = {"parts": parts, "cost": str(cost)}
        if self.reply_id:
            reply["id"] = gateway_id
        return json_response(reply)

    async def _balance(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error("auth")
        value = self.balance_value(documented_as_string=False)
        return json_response({"balance": value, "currency": self.currency})

    def callback(self, provider_id: str, url: str, *, token: str | None = None) -> FakeCallback:
        """The gateway's delivery report, with its bearer token (or `token`, to forge)."""
        message = self.message(provider_id)
        body: dict[str, Any] = {"id": provider_id, "status": message.state}
        if message.state == "failed":
            body["reason"] = "absent subscriber"
        headers = {"Content-Type": "application/json"}
        bearer = self.token if token is None else token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        return FakeCallback(url, json.dumps(body).encode(), headers)
