"""Twilio Programmable Messaging over the 2010-04-01 REST API.

Auth is HTTP Basic `AccountSid:AuthToken` (config `account_sid` and `token`, or `password`
for the token). A send is a form POST to `Accounts/{sid}/Messages.json` with `To` (E.164),
`Body` and `From` = the sender (a sender starting with `MG` is taken as a
`MessagingServiceSid`). The reply (201) is a Message resource: `sid`, `num_segments` (a
string, "0" until a Messaging Service has split it), `price` (null at first, negative once
billed). Errors are `{"code", "message", "more_info", "status"}`; the code decides, the HTTP
status is the fallback.

Status callbacks are form POSTs (`MessageSid`, `MessageStatus`, `ErrorCode`) signed with
`X-Twilio-Signature` = base64(HMAC-SHA1(auth token, full URL + sorted key+value pairs));
an unsigned or wrongly signed callback is rejected. The reply is an empty 200.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from yarl import URL

from dispatch.config import SmsServiceConfig
from dispatch.credentials import same_secret
from dispatch.delivery.channels.outcome import ErrorKind, Outcome
from dispatch.delivery.channels.sms._http import (
    HttpReply,
    basic_auth,
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

DEFAULT_BASE_URL = "https://api.twilio.com/2010-04-01/"
SIGNATURE_HEADER = "X-Twilio-Signature"

_AUTH_CODES = frozenset({20003})
_NO_MONEY_CODES = frozenset({10001, 20005, 30002})  # account not active / suspended
_RATE_CODES = frozenset({20429})
_INVALID_NUMBER_CODES = frozenset({21211, 21612, 21614, 21635})
_CONFIG_CODES = frozenset({21606})  # our From cannot send SMS: every message would fail
_ASYNC_ERRORS: Mapping[int, str] = {
    30002: "account suspended",
    30003: "unreachable handset",
    30004: "message blocked",
    30005: "unknown handset",
    30006: "landline or unreachable carrier",
    30007: "carrier filtering",
    30008: "unknown error",
}

_DELIVERED = frozenset({"delivered", "read"})
_FAILED = frozenset({"undelivered", "failed", "canceled"})


def delivery_state(status: str | None) -> DeliveryState:
    """Twilio MessageStatus → DeliveryState (queued, sending, sent, accepted… are pending)."""
    if not status:
        return DeliveryState.UNKNOWN
    if status in _DELIVERED:
        return DeliveryState.DELIVERED
    if status in _FAILED:
        return DeliveryState.FAILED
    return DeliveryState.PENDING


def classify_error(reply: HttpReply, data: Any) -> Outcome:
    """A Twilio error reply → Outcome, by error code first, then by HTTP status."""
    if not isinstance(data, dict) or to_int(data.get("code")) is None:
        return outcome_for_http_status(reply, "twilio")
    code = to_int(data.get("code"))
    reason = f"Twilio error {code}: {scrub(data.get('message') or '')}".rstrip(": ")
    if code in _AUTH_CODES:
        return paused(reason, ErrorKind.AUTH)
    if code in _NO_MONEY_CODES:
        return paused(reason, ErrorKind.NO_MONEY)
    if code in _CONFIG_CODES:
        return paused(reason, ErrorKind.CONFIG)
    if code in _RATE_CODES or reply.status == 429:
        return rate_limited(reason, reply.retry_after)
    if code in _INVALID_NUMBER_CODES:
        return Outcome.permanent(reason, ErrorKind.INVALID_NUMBER)
    if reply.status >= 500 or reply.status in (401, 403):
        return outcome_for_http_status(reply, "twilio")
    # 21610 (unsubscribed), 21408 (region), 21608 (unverified on trial) and the rest.
    return Outcome.permanent(reason, ErrorKind.REJECTED)


def signature(token: str, url: str, params: Mapping[str, Sequence[str]]) -> str:
    """Twilio's request signature: the URL, then each key+value in key order."""
    payload = url + "".join(key + value for key in sorted(params) for value in sorted(params[key]))
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _url_variants(url: str) -> list[str]:
    """The URL as given, without its port and with the default port: Twilio's helper
    libraries accept either, since proxies differ in what they pass on."""
    parsed = URL(url)
    variants = [url]
    if parsed.explicit_port is not None:
        variants.append(str(parsed.with_port(None)))
    elif parsed.port is not None and parsed.host is not None:
        # yarl drops a default port when formatting, so the variant is built by hand.
        variants.append(f"{parsed.scheme}://{parsed.raw_host}:{parsed.port}{parsed.raw_path_qs}")
    return variants


class TwilioProvider(SmsProvider):
    """Twilio: Messages.json, Balance.json, Messages/{sid}.json; signed status callbacks."""

    kind = "twilio"
    supports_status = True

    @property
    def base_url(self) -> str:
        return self.config.base_url or DEFAULT_BASE_URL

    @property
    def _token(self) -> str | None:
        return self.config.token or self.config.password

    def _account(self) -> tuple[str, dict[str, str]]:
        sid, token = self.config.account_sid, self._token
        if not (sid and token):
            raise ProviderError("twilio: set account_sid and token", ErrorKind.CONFIG)
        return join_url(self.base_url, f"Accounts/{sid}"), basic_auth(sid, token)

    async def send(self, message: SmsMessage) -> Outcome:
        form = {"To": message.phone, "Body": message.text}
        if self.config.callback_url:
            form["StatusCallback"] = self.config.callback_url
        if message.sender and message.sender.startswith("MG"):
            form["MessagingServiceSid"] = message.sender
        elif message.sender:
            form["From"] = message.sender
        try:
            if not message.sender:
                raise ProviderError("twilio: set sender (From number)", ErrorKind.CONFIG)
            account, auth = self._account()
            reply = await http_request(
                self, "POST", f"{account}/Messages.json", data=form, headers=auth
            )
        except ProviderError as exc:
            outcome = outcome_from_error(exc)
        else:
            outcome = self._send_outcome(reply)
        log_send(logger, self.kind, message, outcome)
        return outcome

    @staticmethod
    def _send_outcome(reply: HttpReply) -> Outcome:
        data = reply.json()
        if not reply.ok:
            return classify_error(reply, data)
        if not isinstance(data, dict) or not data.get("sid"):
            return Outcome.retry("twilio: reply without sid", ErrorKind.TRANSIENT)
        parts = to_int(data.get("num_segments"))
        price = to_decimal(data.get("price"))
        return Outcome.sent(
            str(data["sid"]),
            cost=abs(price) if price is not None else None,
            parts=parts or None,  # "0" means not split yet
        )

    @staticmethod
    def _raise_for(reply: HttpReply, what: str) -> None:
        data = reply.json()
        if reply.ok and isinstance(data, dict):
            return
        if reply.ok:
            raise ProviderError(f"twilio {what}: unparseable reply")
        outcome = classify_error(reply, data)
        kind = outcome.error or error_kind_for_http_status(reply.status)
        raise ProviderError(f"twilio {what}: {outcome.reason}", kind)

    async def balance(self) -> Balance:
        account, auth = self._account()
        reply = await http_request(self, "GET", f"{account}/Balance.json", headers=auth)
        if reply.status == 404:
            raise ProviderError("twilio balance: not available (a subaccount?)", ErrorKind.CONFIG)
        self._raise_for(reply, "balance")
        data = reply.json()
        amount = to_decimal(data.get("balance"))
        if amount is None:
            raise ProviderError("twilio balance: no balance in the reply")
        currency = data.get("currency")
        return Balance(amount, str(currency).upper() if currency else None)

    async def fetch_statuses(self, messages: Sequence[tuple[str, str]]) -> list[Receipt]:
        """One Message fetch per sid, in order; a sid Twilio does not know is UNKNOWN."""
        receipts = []
        for message_id, phone in messages:
            account, auth = self._account()
            url = f"{account}/Messages/{message_id}.json"
            reply = await http_request(self, "GET", url, headers=auth)
            if reply.status == 404:
                receipts.append(Receipt(message_id, DeliveryState.UNKNOWN, "not found", phone))
                continue
            self._raise_for(reply, "status")
            data = reply.json()
            status = data.get("status")
            receipts.append(
                Receipt(
                    message_id,
                    delivery_state(status),
                    _reason(status, data.get("error_code"), data.get("error_message")),
                    phone,
                )
            )
        return receipts

    @classmethod
    def callback_authenticator(cls, config: SmsServiceConfig) -> str | None:
        return "X-Twilio-Signature" if config.token or config.password else None

    @classmethod
    def callback_setup(cls, config: SmsServiceConfig, status_url: str) -> str:
        return f"set token (the auth token that signs callbacks to {status_url})"

    def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        token = self._token
        given = _header(request.headers, SIGNATURE_HEADER)
        if not token:
            raise CallbackRejected("twilio: no auth token configured to check the signature")
        if not given:
            raise CallbackRejected("twilio: missing X-Twilio-Signature")
        expected = [signature(token, url, request.form) for url in _url_variants(request.url)]
        if not any(same_secret(given, e) for e in expected):
            raise CallbackRejected("twilio: wrong X-Twilio-Signature")
        fields = {key: values[0] for key, values in request.form.items() if values}
        sid = fields.get("MessageSid") or fields.get("SmsSid")
        status = fields.get("MessageStatus") or fields.get("SmsStatus")
        if not sid or not status:
            return CallbackResult(reply_body="")
        receipt = Receipt(
            sid, delivery_state(status), _reason(status, fields.get("ErrorCode")), fields.get("To")
        )
        return CallbackResult((receipt,), reply_body="")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, case-insensitively even in a plain dict."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def _reason(status: Any, error_code: Any = None, error_message: Any = None) -> str:
    reason = f"Twilio status {status}"
    code = to_int(error_code)
    if code:
        title = error_message or _ASYNC_ERRORS.get(code, "")
        reason += f", error {code}" + (f": {scrub(title)}" if title else "")
    return reason
