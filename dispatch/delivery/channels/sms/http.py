"""The generic `http` kind: any SMS gateway that speaks a small JSON protocol.

Send (CONTRACT.md §1): `POST <base_url>` with JSON `{"phone", "text", "sender", "id"}` (`id`
= our notification id, `phone` in E.164) and `Authorization: Bearer <token>` when `token`
is configured. Any 2xx is accepted; the reply's optional `"id"` is the provider's message
id (else our `id` is), and optional `"cost"` and `"parts"` are read when present.

Extensions of this module (the contract leaves them open):
- Refusals: a non-2xx reply may say why as `{"error": "<code>", "message": "…"}` (or
  `{"error": {"code": …, "message": …}}`), code one of `no_money`, `auth`, `rate_limit`,
  `invalid_number`, `rejected`, `transient`. Without a code the HTTP status decides: 401/403
  credentials, 402 no money, 429 rate limit (`Retry-After` honoured), 400/422 the message is
  refused (permanent), 5xx/408 and anything else transient.
- Balance: `GET <base_url>/balance` → `{"balance": 12.5 | "12.50", "currency": "RUB"?}`.
- Delivery callbacks: `POST` JSON `{"id", "status": "delivered" | "failed", "reason"?}` (or a
  list of such objects) with `Authorization: Bearer <token>`; any other status is taken as
  still pending. Without a `token` every callback is refused (nothing to authenticate it
  with). A body that is not JSON is refused (400). There is no status endpoint.
"""

from __future__ import annotations

import logging
from typing import Any

from dispatch.config import SmsServiceConfig
from dispatch.credentials import bearer_matches
from dispatch.delivery.channels.outcome import ErrorKind, Outcome
from dispatch.delivery.channels.sms._http import (
    HttpReply,
    callback_json,
    error_kind_for_http_status,
    http_request,
    join_url,
    log_send,
    outcome_for_http_status,
    outcome_from_error,
    paused,
    rate_limited,
    scrub,
    to_decimal,
    to_int,
)
from dispatch.delivery.channels.sms.base import (
    Balance,
    CallbackRejected,
    CallbackRequest,
    CallbackResult,
    DeliveryState,
    ProviderError,
    Receipt,
    SmsMessage,
    SmsProvider,
)

logger = logging.getLogger(__name__)

_ERROR_CODES: dict[str, ErrorKind] = {
    "no_money": ErrorKind.NO_MONEY,
    "auth": ErrorKind.AUTH,
    "rate_limit": ErrorKind.RATE_LIMIT,
    "invalid_number": ErrorKind.INVALID_NUMBER,
    "rejected": ErrorKind.REJECTED,
    "reject": ErrorKind.REJECTED,
    "transient": ErrorKind.TRANSIENT,
}


def _error_of(data: Any) -> tuple[str | None, str]:
    """(code, message) of an error body, both optional."""
    if not isinstance(data, dict):
        return None, ""
    error = data.get("error")
    if isinstance(error, dict):
        return _str_or_none(error.get("code")), str(error.get("message") or "")
    return _str_or_none(error), str(data.get("message") or "")


def _str_or_none(value: Any) -> str | None:
    return str(value).lower() if value is not None else None


def classify_refusal(reply: HttpReply) -> Outcome:
    """A non-2xx reply → Outcome: the error code when known, else the HTTP status."""
    code, message = _error_of(reply.json())
    reason = (
        f"http {reply.status}"
        + (f" {code}" if code else "")
        + (f": {scrub(message)}" if message else "")
    )
    kind = _ERROR_CODES.get(code or "")
    if kind is None:
        if reply.status in (400, 422):
            return Outcome.permanent(reason, ErrorKind.REJECTED)
        return outcome_for_http_status(reply, "http")
    if kind in (ErrorKind.AUTH, ErrorKind.NO_MONEY):
        return paused(reason, kind)
    if kind is ErrorKind.RATE_LIMIT:
        return rate_limited(reason, reply.retry_after)
    if kind is ErrorKind.TRANSIENT:
        return Outcome.retry(reason, kind, retry_after=reply.retry_after)
    return Outcome.permanent(reason, kind)


class HttpProvider(SmsProvider):
    """A generic JSON SMS gateway at `base_url` (no status endpoint; JSON callbacks)."""

    kind = "http"
    supports_status = False

    def _url(self, path: str = "") -> str:
        if not self.config.base_url:
            raise ProviderError("http: set base_url", ErrorKind.CONFIG)
        return join_url(self.config.base_url, path) if path else self.config.base_url

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.token}"} if self.config.token else {}

    async def send(self, message: SmsMessage) -> Outcome:
        body = {
            "phone": message.phone,
            "text": message.text,
            "sender": message.sender,
            "id": message.notification_id,
        }
        try:
            reply = await http_request(
                self, "POST", self._url(), json=body, headers=self._headers()
            )
        except ProviderError as exc:
            outcome = outcome_from_error(exc)
        else:
            outcome = self._send_outcome(reply, message)
        log_send(logger, self.kind, message, outcome)
        return outcome

    @staticmethod
    def _send_outcome(reply: HttpReply, message: SmsMessage) -> Outcome:
        if not reply.ok:
            return classify_refusal(reply)
        data = reply.json()
        data = data if isinstance(data, dict) else {}
        provider_id = data.get("id")
        return Outcome.sent(
            str(provider_id) if provider_id not in (None, "") else str(message.notification_id),
            cost=to_decimal(data.get("cost")),
            parts=to_int(data.get("parts")),
        )

    async def balance(self) -> Balance:
        reply = await http_request(self, "GET", self._url("balance"), headers=self._headers())
        if not reply.ok:
            code, message = _error_of(reply.json())
            kind = _ERROR_CODES.get(code or "") or error_kind_for_http_status(reply.status)
            text = f": {scrub(message)}" if message else ""
            raise ProviderError(f"http balance: HTTP {reply.status}{text}", kind)
        data = reply.json()
        amount = to_decimal(data.get("balance")) if isinstance(data, dict) else None
        if amount is None:
            raise ProviderError("http balance: no balance in the reply")
        currency = data.get("currency")
        return Balance(amount, str(currency) if currency else None)

    @classmethod
    def callback_authenticator(cls, config: SmsServiceConfig) -> str | None:
        return "Authorization: Bearer <token>" if config.token else None

    @classmethod
    def callback_setup(cls, config: SmsServiceConfig, status_url: str) -> str:
        return (
            f"set token; the gateway posts to {status_url} with Authorization: Bearer <token>"
        )

    def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        token = self.config.token
        if not token:
            raise CallbackRejected("http: no token is configured to authenticate callbacks")
        given = next((v for k, v in request.headers.items() if k.lower() == "authorization"), "")
        if not bearer_matches(given, token):
            raise CallbackRejected("http: missing or wrong bearer token")
        data = callback_json(request.body or b"null")
        items = data if isinstance(data, list) else [data]
        receipts = []
        for item in items:
            if not isinstance(item, dict) or item.get("id") in (None, ""):
                continue
            status = str(item.get("status") or "").lower()
            state = {
                "delivered": DeliveryState.DELIVERED,
                "failed": DeliveryState.FAILED,
            }.get(status, DeliveryState.PENDING)
            reason = scrub(item["reason"]) if item.get("reason") else f"status {status}"
            receipts.append(Receipt(str(item["id"]), state, reason))
        return CallbackResult(tuple(receipts))
