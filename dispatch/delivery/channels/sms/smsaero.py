"""SMS Aero API v2: JSON POSTs with HTTP Basic auth `email:api_key`.

Replies are `{"success": true, "data": …, "message": null}`; failures are
`{"success": false, "message": "…", "data": …}`, or `{"result": "no credits"}` /
`{"result": "reject", "reason": "…"}`. The HTTP status of failures and the shape of
validation errors are not documented, so the classification reads the HTTP status first
(401/403 credentials, 429 rate limit, 5xx transient), then the body: `no credits` is no
money, `reject` is a refusal, a failure that names the number (in `data` or in `message`)
is an invalid number, anything else refused is a permanent refusal. SMS Aero has no
client-side id, no parts count; `cost` in the reply is the message's total.

Delivery callbacks (`callbackUrl`, `callbackFormat=json`): a JSON body (or form) with `id`
and `status` (SMS Aero's numeric status), authenticated by the service's `token`: the
callback URL must carry `?secret=<token>`. With no `token`, every callback is rejected.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from dispatch.config import SmsServiceConfig
from dispatch.delivery.channels.outcome import ErrorKind, Outcome
from dispatch.delivery.channels.sms._http import (
    HttpReply,
    basic_auth,
    callback_fields,
    check_secret,
    error_kind_for_http_status,
    http_request,
    join_url,
    log_send,
    outcome_for_http_status,
    outcome_from_error,
    paused,
    scrub,
    to_decimal,
    to_int,
)
from dispatch.delivery.channels.sms.base import (
    Balance,
    CallbackRequest,
    CallbackResult,
    DeliveryState,
    ProviderError,
    Receipt,
    SmsMessage,
    SmsProvider,
)

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://gate.smsaero.ru/v2/"
DEFAULT_SIGN = "SMS Aero"

_STATES: Mapping[int, DeliveryState] = {
    0: DeliveryState.PENDING,  # queued
    1: DeliveryState.DELIVERED,
    2: DeliveryState.FAILED,  # not delivered
    3: DeliveryState.PENDING,  # transferred to the operator
    4: DeliveryState.PENDING,  # waiting for status
    6: DeliveryState.FAILED,  # rejected
    8: DeliveryState.PENDING,  # on moderation
}
_STATUS_NAMES: Mapping[int, str] = {
    0: "queued",
    1: "delivered",
    2: "not delivered",
    3: "transferred to operator",
    4: "waiting for status",
    6: "rejected",
    8: "on moderation",
}
# A status request refused for this id alone (not found, malformed) rather than the account.
_REFUSED_ID = frozenset({ErrorKind.REJECTED, ErrorKind.INVALID_NUMBER})
_AUTH_WORDS = ("auth", "unauthor", "password", "api key", "apikey", "forbidden")
_NUMBER_WORDS = ("number", "phone", "номер", "телефон")


def _failure_text(data: Mapping[str, Any]) -> str:
    message = data.get("message") or data.get("reason") or data.get("result") or ""
    details = data.get("data")
    if isinstance(details, dict) and details:
        message = f"{message} {details}".strip()
    return scrub(message) or "refused"


def failure_kind(reply: HttpReply, data: Any) -> ErrorKind:
    """What kind of failure a reply that is not `success: true` reports."""
    if (
        reply.status >= 500
        or reply.status in (401, 403, 429)
        or not isinstance(data, dict)
        or not ({"success", "result"} & set(data))  # not an SMS Aero answer at all
    ):
        return error_kind_for_http_status(reply.status)
    result = str(data.get("result") or "").lower()
    lowered = str(data.get("message") or "").lower()
    if result == "no credits" or "no credits" in lowered or reply.status == 402:
        return ErrorKind.NO_MONEY
    if result == "reject":
        return ErrorKind.REJECTED
    if any(word in lowered for word in _AUTH_WORDS):
        return ErrorKind.AUTH
    details = data.get("data")
    names_number = isinstance(details, dict) and bool({"number", "numbers"} & set(details))
    if names_number or any(word in lowered for word in _NUMBER_WORDS):
        return ErrorKind.INVALID_NUMBER
    return ErrorKind.REJECTED


def classify_send_failure(reply: HttpReply, data: Any) -> Outcome:
    """A send reply that is not `success: true` → Outcome."""
    kind = failure_kind(reply, data)
    if not isinstance(data, dict) or kind in (ErrorKind.TRANSIENT, ErrorKind.RATE_LIMIT):
        return outcome_for_http_status(reply, "smsaero")
    reason = f"SMS Aero: {_failure_text(data)}"
    if kind in (ErrorKind.AUTH, ErrorKind.NO_MONEY):
        return paused(reason, kind)
    return Outcome.permanent(reason, kind)


def _state(status: Any) -> tuple[DeliveryState, str]:
    code = to_int(status)
    if code is None:
        return DeliveryState.UNKNOWN, "no status"
    reason = f"SMS Aero status {code} ({_STATUS_NAMES.get(code, 'unlisted')})"
    return _STATES.get(code, DeliveryState.PENDING), reason


class SmsAeroProvider(SmsProvider):
    """SMS Aero v2: sms/send, balance, sms/status (one id per request); JSON callbacks."""

    kind = "smsaero"
    supports_status = True

    @property
    def base_url(self) -> str:
        return self.config.base_url or DEFAULT_BASE_URL

    def _auth(self) -> dict[str, str]:
        if not (self.config.email and self.config.api_key):
            raise ProviderError("smsaero: set email and api_key", ErrorKind.CONFIG)
        return basic_auth(self.config.email, self.config.api_key)

    async def _call(self, method: str, body: Mapping[str, Any]) -> HttpReply:
        url = join_url(self.base_url, method)
        return await http_request(self, "POST", url, json=dict(body), headers=self._auth())

    async def send(self, message: SmsMessage) -> Outcome:
        digits = message.phone.lstrip("+")
        body = {
            # The API's own examples send the number as a JSON number.
            "number": int(digits) if digits.isdigit() else digits,
            "text": message.text,
            "sign": message.sender or DEFAULT_SIGN,
        }
        if self.config.callback_url:
            body["callbackUrl"] = self.config.callback_url
            body["callbackFormat"] = "json"
        try:
            reply = await self._call("sms/send", body)
        except ProviderError as exc:
            outcome = outcome_from_error(exc)
        else:
            outcome = self._send_outcome(reply)
        log_send(logger, self.kind, message, outcome)
        return outcome

    @staticmethod
    def _send_outcome(reply: HttpReply) -> Outcome:
        data = reply.json()
        if not (reply.ok and isinstance(data, dict) and data.get("success") is True):
            return classify_send_failure(reply, data)
        payload = data.get("data")
        if isinstance(payload, list):  # a `numbers` send: one object per number
            payload = payload[0] if payload else None
        if not isinstance(payload, dict) or payload.get("id") is None:
            return Outcome.retry("smsaero: reply without id", ErrorKind.TRANSIENT)
        if to_int(payload.get("status")) == 6:
            return Outcome.permanent("SMS Aero: rejected", ErrorKind.REJECTED)
        return Outcome.sent(str(payload["id"]), cost=to_decimal(payload.get("cost")))

    @staticmethod
    def _payload(reply: HttpReply, what: str) -> Any:
        """`data` of a successful balance/status reply; raises ProviderError otherwise."""
        data = reply.json()
        if reply.ok and isinstance(data, dict) and data.get("success") is True:
            return data.get("data")
        text = _failure_text(data) if isinstance(data, dict) else f"HTTP {reply.status}"
        raise ProviderError(f"smsaero {what}: {text}", failure_kind(reply, data))

    async def balance(self) -> Balance:
        payload = self._payload(await self._call("balance", {}), "balance")
        amount = to_decimal(payload.get("balance")) if isinstance(payload, dict) else None
        if amount is None:
            raise ProviderError("smsaero balance: no balance in the reply")
        return Balance(amount, "RUB")

    async def fetch_statuses(self, messages: Sequence[tuple[str, str]]) -> list[Receipt]:
        """One sms/status request per id, in order; an id SMS Aero refuses is UNKNOWN."""
        receipts = []
        for message_id, phone in messages:
            key: int | str = int(message_id) if message_id.isdigit() else message_id
            reply = await self._call("sms/status", {"id": key})
            try:
                payload = self._payload(reply, "status")
            except ProviderError as exc:
                if reply.status != 404 and exc.error not in _REFUSED_ID:
                    raise  # credentials, rate limit, server trouble: the whole poll fails
                receipts.append(Receipt(message_id, DeliveryState.UNKNOWN, str(exc), phone))
                continue
            if isinstance(payload, list):
                payload = payload[0] if payload else None
            state, reason = _state(payload.get("status") if isinstance(payload, dict) else None)
            receipts.append(Receipt(message_id, state, reason, phone))
        return receipts

    @classmethod
    def callback_authenticator(cls, config: SmsServiceConfig) -> str | None:
        return "?secret=<token>" if config.token else None

    def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        check_secret(self.config.token, request)
        fields = callback_fields(request)
        if fields.get("id") is None or fields.get("status") is None:
            return CallbackResult()
        state, reason = _state(fields["status"])
        number = fields.get("number")
        phone = f"+{str(number).lstrip('+')}" if number else None
        return CallbackResult((Receipt(str(fields["id"]), state, reason, phone),))
