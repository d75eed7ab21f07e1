"""A fake SMS gateway of the generic `http` kind (dispatch/delivery/channels/sms/http.py).

`POST /sms` JSON `{"phone", "text", "sender", "id"}` with `Authorization: Bearer <token>`
→ 200 `{"id": "sandbox-<n>", "parts", "cost"}`; `GET /sms/balance` → `{"balance",
"currency"}`. Refusals use the kind's error body `{"error": "<code>", "message"}`. Each
accepted text lands in the phone's inbox with its segments (the project's own count) and
its cost at `PRICE_PER_SEGMENT`.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

from aiohttp import hdrs, web

from bot.sandbox.inbox import Inbox
from dispatch.credentials import bearer_matches
from dispatch.phones import InvalidPhone, normalise_phone
from dispatch.render.segments import segment_text

logger = logging.getLogger(__name__)

PATH = "/sms"
PRICE_PER_SEGMENT = Decimal("3.50")
CURRENCY = "RUB"
#: Enough for a long session; the balance job and `vestnik balance` see it go down.
START_BALANCE = Decimal("10000.00")


def _refusal(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


class FakeSmsGateway:
    """The gateway's HTTP side; what it accepts goes to `inbox`."""

    def __init__(self, inbox: Inbox, token: str) -> None:
        self._inbox = inbox
        self._token = token
        self.balance = START_BALANCE

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(PATH, self._send)
        app.router.add_get(f"{PATH}/balance", self._balance)
        return app

    def _authorised(self, request: web.Request) -> bool:
        return bearer_matches(request.headers.get(hdrs.AUTHORIZATION, ""), self._token)

    async def _send(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _refusal(401, "auth", "missing or wrong bearer token")
        try:
            body: Any = json.loads(await request.read())
        except ValueError:
            return _refusal(400, "rejected", "the body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
            return _refusal(400, "rejected", "text is required")
        try:
            phone = normalise_phone(str(body.get("phone") or ""))
        except InvalidPhone:
            return _refusal(422, "invalid_number", "not a phone number")
        text: str = body["text"]
        segmentation = segment_text(text)
        cost = max(1, segmentation.segments) * PRICE_PER_SEGMENT
        if cost > self.balance:
            return _refusal(402, "no_money", "the sandbox balance is spent; restart it")
        self.balance -= cost
        sender = body.get("sender")
        line = self._inbox.add_sms(
            phone=phone,
            text=text,
            sender=str(sender) if sender else None,
            notification_id=_notification_id(body.get("id")),
            segmentation=segmentation,
            cost=cost,
        )
        logger.info(
            "sandbox SMS %s: %d segment(s), %s %s", line.seq, line.segments, cost, CURRENCY
        )
        return web.json_response(
            {"id": f"sandbox-{line.seq}", "parts": line.segments, "cost": str(cost)}
        )

    async def _balance(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _refusal(401, "auth", "missing or wrong bearer token")
        return web.json_response({"balance": str(self.balance), "currency": CURRENCY})


def _notification_id(value: Any) -> int | None:
    """Our journal id, which the `http` kind sends as the message's `id`."""
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None
