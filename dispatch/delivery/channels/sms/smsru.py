"""SMS.ru over its HTTP API with JSON replies (`json=1`).

Auth is `api_id` (config `api_key`), sent in the form body of POST requests (code 210 says
some methods insist on POST). SMS.ru has no client-side message id; its `sms_id` is kept.
The send reply has neither cost nor parts; `sms/cost` (the send's parameters, nothing sent)
gives the price of a segment for the balance in SMS.

Delivery callbacks: form field `data[]`, entries `"sms_status\\n<sms_id>\\n<code>\\n<ts>"`,
and `hash` = sha256(api_id + all entries). With `api_key` set the hash is required: a
callback without one is rejected like one with a wrong one (otherwise leaving the hash out
would be the way around it). When the service has a `token` configured, the handler URL must
also carry `?secret=<token>`; with neither `api_key` nor `token`, every callback is rejected.
The reply is `100`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from dispatch.config import SmsServiceConfig
from dispatch.credentials import same_secret
from dispatch.delivery.channels.outcome import ErrorKind, Outcome
from dispatch.delivery.channels.sms._http import (
    HttpReply,
    check_secret,
    error_kind_for_http_status,
    http_request,
    join_url,
    log_send,
    outcome_for_http_status,
    outcome_from_error,
    paused,
    price_per_segment,
    rate_limited,
    scrub,
    to_decimal,
    to_int,
)
from dispatch.delivery.channels.sms.base import (
    PRICE_PROBE_PHONE,
    PRICE_PROBE_TEXT,
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

DEFAULT_BASE_URL = "https://sms.ru/"
STATUS_BATCH = 100
# 231 = the same text to the same number within a minute; 206 = the account's daily limit.
SAME_TEXT_RETRY_SECONDS = 60.0
DAILY_LIMIT_RETRY_SECONDS = 3600.0

_AUTH = frozenset({200, 300, 301})
_REJECTED = frozenset({203, 204, 205, 207, 209, 215, 216, 230, 232, *range(501, 509)})
_BAD_REQUEST = frozenset({208, 210, 211, 212, 213})
_TRANSIENT = frozenset({220, 500})

_DELIVERED = frozenset({103, 110})
_FAILED = frozenset({104, 105, 106, 107, 108, 150})
_PENDING = frozenset({100, 101, 102})


def error_kind(code: int | None) -> ErrorKind:
    """An SMS.ru error code → ErrorKind."""
    if code in _AUTH:
        return ErrorKind.AUTH
    if code == 201:
        return ErrorKind.NO_MONEY
    if code == 202:
        return ErrorKind.INVALID_NUMBER
    if code in (206, 231):
        return ErrorKind.RATE_LIMIT
    if code in _REJECTED:
        return ErrorKind.REJECTED
    if code in _BAD_REQUEST:
        return ErrorKind.BAD_REQUEST
    return ErrorKind.TRANSIENT  # 220, 500 and codes we do not know


def classify_send_error(code: int | None, text: str) -> Outcome:
    """An SMS.ru send error code (request- or number-level) → Outcome."""
    reason = f"SMS.ru error {code}" + (f": {scrub(text)}" if text else "")
    kind = error_kind(code)
    if kind in (ErrorKind.AUTH, ErrorKind.NO_MONEY):
        return paused(reason, kind)
    if code == 206:
        return Outcome.retry(
            reason, kind, retry_after=DAILY_LIMIT_RETRY_SECONDS, pause_channel=True
        )
    if code == 231:
        return rate_limited(reason, SAME_TEXT_RETRY_SECONDS)
    if kind is ErrorKind.TRANSIENT:
        return Outcome.retry(reason, kind)
    return Outcome.permanent(reason, kind)


def delivery_state(code: int | None) -> DeliveryState:
    """SMS.ru message status code → DeliveryState."""
    if code in _DELIVERED:
        return DeliveryState.DELIVERED
    if code in _FAILED:
        return DeliveryState.FAILED
    if code in _PENDING:
        return DeliveryState.PENDING
    return DeliveryState.UNKNOWN  # -1 (not found) and request errors for this id


def callback_hash(api_id: str, entries: Sequence[str]) -> str:
    return hashlib.sha256((api_id + "".join(entries)).encode()).hexdigest()


class SmsRuProvider(SmsProvider):
    """SMS.ru: sms/send, my/balance, sms/status; `data[]` delivery callbacks."""

    kind = "smsru"
    supports_status = True

    @property
    def base_url(self) -> str:
        return self.config.base_url or DEFAULT_BASE_URL

    def _api_id(self) -> str:
        if not self.config.api_key:
            raise ProviderError("smsru: set api_key (SMS.ru api_id)", ErrorKind.CONFIG)
        return self.config.api_key

    async def _call(self, method: str, params: Mapping[str, str]) -> HttpReply:
        data = {"api_id": self._api_id(), "json": "1", **params}
        return await http_request(self, "POST", join_url(self.base_url, method), data=data)

    async def send(self, message: SmsMessage) -> Outcome:
        number = message.phone.lstrip("+")
        params = {"to": number, "msg": message.text}
        if message.sender:
            params["from"] = message.sender
        try:
            reply = await self._call("sms/send", params)
        except ProviderError as exc:
            outcome = outcome_from_error(exc)
        else:
            outcome = self._send_outcome(reply, number)
        log_send(logger, self.kind, message, outcome)
        return outcome

    @staticmethod
    def _send_outcome(reply: HttpReply, number: str) -> Outcome:
        data = reply.json()
        if not reply.ok or not isinstance(data, dict):
            return outcome_for_http_status(reply, "smsru")
        if data.get("status") != "OK":
            return classify_send_error(
                to_int(data.get("status_code")), str(data.get("status_text", ""))
            )
        per_number = data.get("sms")
        if not isinstance(per_number, dict) or not per_number:
            return Outcome.retry("smsru: reply without sms entries", ErrorKind.TRANSIENT)
        entry = per_number.get(number) or next(iter(per_number.values()))
        if not isinstance(entry, dict):
            return Outcome.retry("smsru: unparseable sms entry", ErrorKind.TRANSIENT)
        if entry.get("status") != "OK" or not entry.get("sms_id"):
            return classify_send_error(
                to_int(entry.get("status_code")), str(entry.get("status_text", ""))
            )
        return Outcome.sent(str(entry["sms_id"]))

    @staticmethod
    def _checked(reply: HttpReply, what: str) -> dict[str, Any]:
        """The JSON object of a balance/status reply; raises ProviderError on any error."""
        if not reply.ok:
            raise ProviderError(
                f"smsru {what}: HTTP {reply.status}", error_kind_for_http_status(reply.status)
            )
        data = reply.json()
        if not isinstance(data, dict):
            raise ProviderError(f"smsru {what}: unparseable reply")
        if data.get("status") != "OK":
            code = to_int(data.get("status_code"))
            text = scrub(data.get("status_text", ""))
            raise ProviderError(f"smsru {what}: error {code}: {text}", error_kind(code))
        return data

    async def balance(self) -> Balance:
        reply = await self._call("my/balance", {})
        lines = reply.text.split()
        if reply.ok and len(lines) == 2 and lines[0] == "100":
            amount = to_decimal(lines[1])  # the plain-text form "100\n<balance>"
        else:
            amount = to_decimal(self._checked(reply, "balance").get("balance"))
        if amount is None:
            raise ProviderError("smsru balance: no balance in the reply")
        return Balance(amount, "RUB")

    async def price(self) -> Decimal:
        """`sms/cost`: `total_cost` over `total_sms`, or the number's own `cost` and `sms`."""
        number = PRICE_PROBE_PHONE.lstrip("+")
        params = {"to": number, "msg": PRICE_PROBE_TEXT}
        data = self._checked(await self._call("sms/cost", params), "price")
        if data.get("total_cost") is not None:
            return price_per_segment(data["total_cost"], data.get("total_sms"), "smsru price")
        entries = data.get("sms")
        entry = entries.get(number) if isinstance(entries, dict) else None
        if not isinstance(entry, dict):
            raise ProviderError("smsru price: no cost in the reply")
        if entry.get("status") not in (None, "OK"):
            code = to_int(entry.get("status_code"))
            raise ProviderError(f"smsru price: error {code}", error_kind(code))
        return price_per_segment(entry.get("cost"), entry.get("sms"), "smsru price")

    async def fetch_statuses(self, messages: Sequence[tuple[str, str]]) -> list[Receipt]:
        receipts: list[Receipt] = []
        for start in range(0, len(messages), STATUS_BATCH):
            batch = messages[start : start + STATUS_BATCH]
            ids = ",".join(message_id for message_id, _ in batch)
            data = self._checked(await self._call("sms/status", {"sms_id": ids}), "status")
            entries = data.get("sms")
            entries = entries if isinstance(entries, dict) else {}
            for message_id, phone in batch:
                entry = entries.get(message_id)
                if not isinstance(entry, dict):
                    receipts.append(
                        Receipt(message_id, DeliveryState.UNKNOWN, "not in the reply", phone)
                    )
                    continue
                code = to_int(entry.get("status_code"))
                reason = f"SMS.ru status {code}" + (
                    f": {scrub(entry['status_text'])}" if entry.get("status_text") else ""
                )
                receipts.append(Receipt(message_id, delivery_state(code), reason, phone))
        return receipts

    @classmethod
    def callback_authenticator(cls, config: SmsServiceConfig) -> str | None:
        checks = (["hash"] if config.api_key else []) + (
            ["?secret=<token>"] if config.token else []
        )
        return " and ".join(checks) or None

    @classmethod
    def callback_setup(cls, config: SmsServiceConfig, status_url: str) -> str:
        return (
            f"set api_key (SMS.ru signs callbacks with it), or token and register "
            f"{status_url}?secret=<token>"
        )

    def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        if self.config.token or not self.config.api_key:
            check_secret(self.config.token, request)  # refuses when there is no token either
        entries = list(request.form.get("data[]", ())) or list(request.form.get("data", ()))
        if self.config.api_key:
            given = (request.form.get("hash") or [""])[0]
            if not given:
                raise CallbackRejected("smsru: callback without hash")
            expected = callback_hash(self.config.api_key, entries)
            if not same_secret(given.strip().lower(), expected):
                raise CallbackRejected("smsru: wrong callback hash")
        receipts = []
        for entry in entries:
            lines = [line.strip() for line in entry.split("\n")]
            if len(lines) < 3 or lines[0] != "sms_status":
                continue  # callcheck_status and other kinds are not ours
            code = to_int(lines[2])
            receipts.append(Receipt(lines[1], delivery_state(code), f"SMS.ru status {code}"))
        return CallbackResult(tuple(receipts), reply_body="100")
