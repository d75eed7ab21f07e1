"""Fake Twilio Programmable Messaging (2010-04-01 REST API) for one account.

`POST Accounts/{sid}/Messages.json` (form) → 201 Message resource; `GET …/Messages/{sid}.json`;
`GET …/Balance.json`. HTTP Basic `AccountSid:AuthToken`. Errors are
`{"code", "message", "more_info", "status"}` with the matching HTTP status. Status callbacks
are signed form POSTs (`X-Twilio-Signature`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tests.fakes.sms import (
    FakeCallback,
    FakeSmsServer,
    SentSms,
    basic_credentials,
    json_response,
)

_STATUSES = {"pending": "sent", "delivered": "delivered", "failed": "undelivered"}
_FAILURES: dict[str, tuple[int, int, str]] = {
    "no_money": (401, 20005, "Account not active"),
    "invalid_number": (400, 21211, "The 'To' number {to} is not a valid phone number."),
    "auth": (401, 20003, "Authenticate"),
    "rate_limit": (429, 20429, "Too Many Requests"),
    "reject": (400, 21610, "Attempt to send to unsubscribed recipient"),
}
UNREACHABLE = (30003, "Unreachable destination handset")


def twilio_signature(token: str, url: str, fields: list[tuple[str, str]]) -> str:
    payload = url + "".join(k + v for k, v in sorted(fields))
    return base64.b64encode(
        hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    ).decode()


def _error(status: int, code: int, message: str) -> web.Response:
    return json_response(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status=status,
    )


class FakeTwilio(FakeSmsServer):
    """Twilio for account `account_sid` with auth token `token`, billing in USD."""

    base_path = "/2010-04-01/"
    price_per_part = Decimal("0.0079")
    currency = "USD"

    def __init__(
        self,
        *,
        account_sid: str = "AC" + "0" * 32,
        token: str = "twilio-token",
        balance: Decimal = Decimal("20.00"),
        latency: float = 0.0,
        rate_limit: float | None = None,
    ) -> None:
        super().__init__(balance=balance, latency=latency, rate_limit=rate_limit)
        self.account_sid, self.token = account_sid, token
        self.last_form: dict[str, str] = {}

    def add_routes(self, app: web.Application) -> None:
        account = "/2010-04-01/Accounts/{account}"
        app.router.add_post(f"{account}/Messages.json", self._send)
        app.router.add_get(f"{account}/Messages/{{sid}}.json", self._fetch)
        app.router.add_get(f"{account}/Balance.json", self._balance)

    async def failure_response(self, kind: str, request: web.Request) -> web.Response:
        status, code, message = _FAILURES[kind]
        to = (await request.post()).get("To", "") if request.method == "POST" else ""
        return _error(status, code, message.format(to=to))

    def _authorised(self, request: web.Request) -> bool:
        credentials = (self.account_sid, self.token)
        return basic_credentials(request) == credentials and (
            request.match_info["account"] == self.account_sid
        )

    def _resource(self, message: SentSms) -> dict[str, Any]:
        status = _STATUSES[message.state] if message.state != "pending" else "queued"
        failed = message.state == "failed"
        return {
            "sid": message.provider_id,
            "account_sid": self.account_sid,
            "status": status,
            "to": message.phone,
            "from": message.sender,
            "body": message.text,
            "num_segments": str(message.parts),
            "num_media": "0",
            "price": None,
            "price_unit": "USD",
            "error_code": UNREACHABLE[0] if failed else None,
            "error_message": UNREACHABLE[1] if failed else None,
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{message.provider_id}.json",
        }

    async def _send(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(*_FAILURES["auth"])
        form = await request.post()
        self.last_form = {key: str(value) for key, value in form.items()}
        to, body = str(form.get("To", "")), str(form.get("Body", ""))
        sender = form.get("From") or form.get("MessagingServiceSid")
        if not to.startswith("+") or not self.valid_number(to):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not sender:
            return _error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required")
        if not body:
            return _error(400, 21602, "Message body is required.")
        if self.price(body)[1] > self.balance:
            return _error(*_FAILURES["no_money"])
        sid = "SM" + secrets.token_hex(16)
        message = self.record(sid, phone=to, text=body, sender=str(sender))
        return json_response(self._resource(message), status=201)

    async def _fetch(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(*_FAILURES["auth"])
        found = [m for m in self.sent if m.provider_id == request.match_info["sid"]]
        if not found:
            return _error(404, 20404, "The requested resource was not found")
        resource = self._resource(found[0])
        resource["status"] = _STATUSES[found[0].state]
        resource["price"] = str(-found[0].cost)
        return json_response(resource)

    async def _balance(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(*_FAILURES["auth"])
        return json_response(
            {
                "account_sid": self.account_sid,
                "balance": self.balance_value(documented_as_string=True),
                "currency": self.currency,
            }
        )

    def callback(self, provider_id: str, url: str, *, token: str | None = None) -> FakeCallback:
        """The status callback, signed with the account's token (or `token`, to forge)."""
        message = self.message(provider_id)
        status = _STATUSES[message.state]
        fields = [
            ("MessageSid", message.provider_id),
            ("SmsSid", message.provider_id),
            ("MessageStatus", status),
            ("SmsStatus", status),
            ("AccountSid", self.account_sid),
            ("From", message.sender or ""),
            ("To", message.phone),
            ("ApiVersion", "2010-04-01"),
        ]
        if message.state == "failed":
            fields.append(("ErrorCode", str(UNREACHABLE[0])))
        signature = twilio_signature(self.token if token is None else token, url, fields)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        }
        return FakeCallback(url, urlencode(fields).encode(), headers)
