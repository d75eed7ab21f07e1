"""SMSC.ru (smsc.ru / smscentre.com) over its HTTP API with JSON replies (`fmt=3`).

Auth is `login` + `psw` (config `login`/`password`) or `apikey` (config `api_key`); requests
are form POSTs so credentials never appear in URLs. Sends carry `charset=utf-8` (SMSC's
default is windows-1251), `cost=3` (the reply then has the cost and the new balance) and
our notification id as SMSC's client-side `id`, which SMSC echoes and uses for statuses.
The price of a segment is send.php with `cost=1`, which only calculates.

Delivery callbacks: SMSC calls a handler URL set in the account with `id`, `phone`,
`status`, `err` (query, form or a JSON body; all are read). SMSC's own anti-spoofing hash is
not documented well enough to verify, so the service's `token` authenticates them: the
handler URL registered at SMSC must carry it as `?secret=<token>`, and callbacks without it
are rejected. With no `token`, every callback is rejected: SMSC's message ids are our own
sequential notification ids, so an unauthenticated callback could mark any of them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from dispatch.config import SmsServiceConfig
from dispatch.delivery.channels.outcome import ErrorKind, Outcome
from dispatch.delivery.channels.sms._http import (
    HttpReply,
    callback_fields,
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
    CallbackRequest,
    CallbackResult,
    DeliveryState,
    ProviderError,
    Receipt,
    SmsMessage,
    SmsProvider,
)

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://smsc.ru/sys/"
MAX_CLIENT_ID = 2_147_483_647
# Code 9 counts identical requests per minute, code 4 blocks the IP for a while.
SMSC_RATE_LIMIT_SECONDS = 60.0

_ERROR_KINDS: Mapping[int, ErrorKind] = {
    1: ErrorKind.BAD_REQUEST,
    2: ErrorKind.AUTH,
    3: ErrorKind.NO_MONEY,
    4: ErrorKind.RATE_LIMIT,
    5: ErrorKind.BAD_REQUEST,
    6: ErrorKind.REJECTED,
    7: ErrorKind.INVALID_NUMBER,
    8: ErrorKind.REJECTED,
    9: ErrorKind.RATE_LIMIT,
}

_STATUS_NAMES: Mapping[int, str] = {
    -3: "not found",
    -2: "stopped",
    -1: "waiting to send",
    0: "passed to the operator",
    1: "delivered",
    2: "read",
    3: "expired",
    4: "link clicked",
    20: "undeliverable",
    22: "invalid number",
    23: "prohibited",
    24: "no money",
    25: "unavailable number",
}


def delivery_state(code: int) -> DeliveryState:
    """SMSC status code → DeliveryState (read and clicked imply delivered)."""
    if code in (1, 2, 4):
        return DeliveryState.DELIVERED
    if code == -3:
        return DeliveryState.UNKNOWN
    # 20 and above are the error statuses (their list is not fully documented).
    if code in (-2, 3) or code >= 20:
        return DeliveryState.FAILED
    return DeliveryState.PENDING


def classify_send_error(code: int | None, text: str) -> Outcome:
    """An SMSC send error code → Outcome."""
    reason = f"SMSC error {code}: {scrub(text)}" if text else f"SMSC error {code}"
    kind = _ERROR_KINDS.get(code) if code is not None else None
    if kind in (ErrorKind.AUTH, ErrorKind.NO_MONEY):
        return paused(reason, kind)
    if code == 4:  # the whole IP is blocked, not just this message
        return Outcome.retry(
            reason, ErrorKind.RATE_LIMIT, retry_after=SMSC_RATE_LIMIT_SECONDS, pause_channel=True
        )
    if kind is ErrorKind.RATE_LIMIT:
        return rate_limited(reason, SMSC_RATE_LIMIT_SECONDS)
    if kind is not None:
        return Outcome.permanent(reason, kind)
    return Outcome.retry(reason, ErrorKind.TRANSIENT)


class SmscProvider(SmsProvider):
    """SMSC.ru: send.php, balance.php, status.php; callbacks from the account's handler URL."""

    kind = "smsc"
    supports_status = True
    message_ids_are_ours = True

    @property
    def base_url(self) -> str:
        return self.config.base_url or DEFAULT_BASE_URL

    def _auth(self) -> dict[str, str]:
        if self.config.login:
            return {"login": self.config.login, "psw": self.config.password or ""}
        if self.config.api_key:
            return {"apikey": self.config.api_key}
        raise ProviderError("smsc: set login and password, or api_key", ErrorKind.CONFIG)

    async def _call(self, method: str, params: Mapping[str, str]) -> HttpReply:
        data = {**self._auth(), "fmt": "3", "charset": "utf-8", **params}
        return await http_request(
            self, "POST", join_url(self.base_url, f"{method}.php"), data=data
        )

    async def send(self, message: SmsMessage) -> Outcome:
        params = {"phones": message.phone, "mes": message.text, "cost": "3"}
        if 1 <= message.notification_id <= MAX_CLIENT_ID:
            params["id"] = str(message.notification_id)
        if message.sender:
            params["sender"] = message.sender
        try:
            reply = await self._call("send", params)
        except ProviderError as exc:
            outcome = outcome_from_error(exc)
        else:
            outcome = self._send_outcome(reply)
        log_send(logger, self.kind, message, outcome)
        return outcome

    def _send_outcome(self, reply: HttpReply) -> Outcome:
        data = reply.json()
        if not reply.ok or not isinstance(data, dict):
            return outcome_for_http_status(reply, "smsc")
        if "error_code" in data or "error" in data:
            return classify_send_error(to_int(data.get("error_code")), str(data.get("error", "")))
        if data.get("id") is None:
            return Outcome.retry("smsc: reply without id", ErrorKind.TRANSIENT)
        return Outcome.sent(
            str(data["id"]), cost=to_decimal(data.get("cost")), parts=to_int(data.get("cnt"))
        )

    def _checked(self, reply: HttpReply, what: str) -> Any:
        """The JSON of a balance/status reply; raises ProviderError on any error."""
        data = reply.json()
        if not reply.ok:
            raise ProviderError(
                f"smsc {what}: HTTP {reply.status}", error_kind_for_http_status(reply.status)
            )
        if data is None:
            raise ProviderError(f"smsc {what}: unparseable reply")
        if isinstance(data, dict) and ("error_code" in data or "error" in data):
            code = to_int(data.get("error_code"))
            kind = (
                _ERROR_KINDS.get(code, ErrorKind.TRANSIENT)
                if code is not None
                else ErrorKind.TRANSIENT
            )
            raise ProviderError(f"smsc {what}: error {code}: {scrub(data.get('error', ''))}", kind)
        return data

    async def balance(self) -> Balance:
        data = self._checked(await self._call("balance", {"cur": "1"}), "balance")
        amount = to_decimal(data.get("balance")) if isinstance(data, dict) else None
        if amount is None:
            raise ProviderError("smsc balance: no balance in the reply")
        currency = data.get("currency")
        return Balance(amount, str(currency) if currency else None)

    async def price(self) -> Decimal:
        """send.php with `cost=1`: SMSC only calculates the cost and sends nothing. SMSC
        refuses more than 5 identical cost requests a minute (code 9): callers cache."""
        params = {"phones": PRICE_PROBE_PHONE, "mes": PRICE_PROBE_TEXT, "cost": "1"}
        data = self._checked(await self._call("send", params), "price")
        if not isinstance(data, dict):
            raise ProviderError("smsc price: unparseable reply")
        return price_per_segment(data.get("cost"), data.get("cnt"), "smsc price")

    async def fetch_statuses(self, messages: Sequence[tuple[str, str]]) -> list[Receipt]:
        """One status.php request for all pairs (SMSC allows one mass request a minute)."""
        if not messages:
            return []
        ids = [message_id for message_id, _ in messages]
        phones = [phone.lstrip("+") for _, phone in messages]
        if len(messages) == 1:
            params = {"id": ids[0], "phone": phones[0]}
        else:
            params = {"id": ",".join(ids), "phone": ",".join(phones)}
        data = self._checked(await self._call("status", params), "status")
        items = data if isinstance(data, list) else [data]
        by_id = {
            str(item.get("id")): item for item in items if isinstance(item, dict) and "id" in item
        }
        receipts = []
        for position, (message_id, phone) in enumerate(messages):
            item = by_id.get(message_id)
            if item is None and not by_id and position < len(items):
                item = items[position]  # replies without ids come in request order
            receipts.append(self._receipt(message_id, phone, item))
        return receipts

    @staticmethod
    def _receipt(message_id: str, phone: str | None, item: Any) -> Receipt:
        code = to_int(item.get("status")) if isinstance(item, dict) else None
        if code is None:
            return Receipt(message_id, DeliveryState.UNKNOWN, "no status in the reply", phone)
        reason = f"SMSC status {code} ({_STATUS_NAMES.get(code, 'unlisted')})"
        err = to_int(item.get("err"))
        if err:
            reason += f", err {err}"
        return Receipt(message_id, delivery_state(code), reason, phone)

    @classmethod
    def callback_authenticator(cls, config: SmsServiceConfig) -> str | None:
        return "?secret=<token>" if config.token else None

    def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        check_secret(self.config.token, request)
        fields = callback_fields(request)
        message_id = fields.get("id")
        if not message_id or fields.get("status") is None:
            return CallbackResult(reply_body="OK")
        phone = fields.get("phone")
        phone = f"+{phone.lstrip('+')}" if phone else None
        return CallbackResult((self._receipt(str(message_id), phone, fields),), reply_body="OK")
