"""Fake SMS Aero API v2: POST sms/send, balance, sms/status with HTTP Basic email:api_key.

Replies use the `{"success", "data", "message"}` envelope; no money and rejections are
`{"result": "no credits"}` / `{"result": "reject", "reason"}`. Where SMS Aero's reference is
silent (auth failure status, validation errors, rate limits) this fake answers 401,
400 `{"success": false, "message": "Validation error.", "data": {"number": [...]}}` and 429
with `Retry-After`. Callbacks are JSON `{"id", "number", "status", "extendStatus", …}`.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from itertools import count
from typing import Any

from aiohttp import web

from tests.fakes.sms import (
    FakeCallback,
    FakeSmsServer,
    SentSms,
    basic_credentials,
    json_response,
)

_STATE_CODES = {"pending": 0, "delivered": 1, "failed": 2}
_EXTEND = {0: "queue", 1: "delivery", 2: "undelivered"}
RATE_LIMIT_RETRY_AFTER = "2"


def _failure(message: str, status: int, data: Any = None) -> web.Response:
    return json_response({"success": False, "data": data, "message": message}, status=status)


class FakeSmsAero(FakeSmsServer):
    """SMS Aero v2 for one account (email + API key)."""

    base_path = "/v2/"

    def __init__(
        self,
        *,
        email: str = "shop@example.com",
        api_key: str = "aero-key",
        balance: Decimal = Decimal("1000.00"),
        latency: float = 0.0,
        rate_limit: float | None = None,
    ) -> None:
        super().__init__(balance=balance, latency=latency, rate_limit=rate_limit)
        self.email, self.api_key = email, api_key
        self.last_body: dict[str, object] = {}
        self._ids = count(12345)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v2/sms/send", self._send)
        app.router.add_post("/v2/balance", self._balance)
        app.router.add_post("/v2/sms/status", self._status)

    async def failure_response(self, kind: str, request: web.Request) -> web.Response:
        if kind == "no_money":
            return json_response({"result": "no credits"})
        if kind == "reject":
            return json_response({"result": "reject", "reason": "Запрещённый текст сообщения"})
        if kind == "invalid_number":
            return _failure("Validation error.", 400, {"number": ["Неверный номер телефона"]})
        if kind == "auth":
            return _failure("Unauthorized.", 401)
        return web.json_response(
            {"success": False, "data": None, "message": "Too Many Requests"},
            status=429,
            headers={"Retry-After": RATE_LIMIT_RETRY_AFTER},
        )

    async def _body(self, request: web.Request) -> tuple[dict[str, Any], web.Response | None]:
        if basic_credentials(request) != (self.email, self.api_key):
            return {}, _failure("Unauthorized.", 401)
        if request.content_type == "application/json":
            try:
                body = json.loads(await request.read() or b"{}")
            except ValueError:
                return {}, _failure("Bad JSON.", 400)
        else:
            body = dict(await request.post())
        return (body if isinstance(body, dict) else {}), None

    def _sms(self, message: SentSms) -> dict[str, Any]:
        status = _STATE_CODES[message.state]
        return {
            "id": int(message.provider_id),
            "from": message.sender,
            "number": message.phone,
            "text": message.text,
            "status": status,
            "extendStatus": _EXTEND[status],
            "channel": "FREE SIGN",
            "cost": float(message.cost),
            "dateCreate": int(message.at),
            "dateSend": int(message.at),
        }

    async def _send(self, request: web.Request) -> web.Response:
        body, refusal = await self._body(request)
        if refusal is not None:
            return refusal
        self.last_body = dict(body)
        number = str(body.get("number", ""))
        text = str(body.get("text") or "")
        if not self.valid_number(number):
            return _failure("Validation error.", 400, {"number": ["Неверный номер телефона"]})
        if not text:
            return _failure("Validation error.", 400, {"text": ["Необходимо заполнить текст"]})
        if self.price(text)[1] > self.balance:
            return json_response({"result": "no credits"})
        message = self.record(
            str(next(self._ids)), phone=number, text=text, sender=body.get("sign")
        )
        return json_response({"success": True, "data": self._sms(message), "message": None})

    async def _balance(self, request: web.Request) -> web.Response:
        _, refusal = await self._body(request)
        if refusal is not None:
            return refusal
        value = self.balance_value(documented_as_string=False)
        return json_response({"success": True, "data": {"balance": value}, "message": None})

    async def _status(self, request: web.Request) -> web.Response:
        body, refusal = await self._body(request)
        if refusal is not None:
            return refusal
        found = [m for m in self.sent if m.provider_id == str(body.get("id"))]
        if not found:
            return _failure("Sms not found.", 404)
        data = self._sms(found[0])
        data["cost"] = str(found[0].cost)  # a string here, unlike in the send reply
        data["dateAnswer"] = int(time.time())
        return json_response({"success": True, "data": data, "message": None})

    def callback(self, provider_id: str, url: str) -> FakeCallback:
        data = self._sms(self.message(provider_id))
        body = json.dumps(data, ensure_ascii=False).encode()
        return FakeCallback(url, body, {"Content-Type": "application/json"})
