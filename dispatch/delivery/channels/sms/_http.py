"""Plumbing shared by the HTTP adapters: requests, replies, decimals, auth, secrets.

Not part of the provider interface (base.py): small helpers so that each adapter is only
its wire protocol and its classification table.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp
from multidict import CIMultiDict

from dispatch.credentials import same_secret
from dispatch.delivery.channels.outcome import ErrorKind, Outcome
from dispatch.delivery.channels.sms.base import (
    CallbackMalformed,
    CallbackRejected,
    CallbackRequest,
    ProviderError,
    SmsMessage,
    SmsProvider,
)
from dispatch.phones import mask_phone

PAUSE_SECONDS = 300.0
"""No money or bad credentials: the whole account waits this long before the next try."""
RATE_LIMIT_SECONDS = 10.0
"""A provider rate limit that did not say how long to wait."""

_PHONE_LIKE = re.compile(r"\+?\d{7,}")


def scrub(text: object, limit: int = 300) -> str:
    """Provider text made fit for reasons and logs: phone-like digit runs masked, shortened."""
    cleaned = _PHONE_LIKE.sub(lambda match: mask_phone(match.group()), str(text).strip())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def to_decimal(value: object) -> Decimal | None:
    """`"3.80"`, `3.8`, `Decimal("3.8")` or `4` → Decimal; anything else → None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        value = str(value)  # repr of the float, not its binary expansion
    try:
        result = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def to_int(value: object) -> int | None:
    """`"2"`, `2` or `Decimal(2)` → 2; anything else → None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def price_per_segment(cost: object, parts: object, what: str) -> Decimal:
    """A price reply's total `cost` over its `parts`; ProviderError when either is missing
    or not positive (a zero price would make the balance last forever)."""
    total, count = to_decimal(cost), to_int(parts)
    if total is None or count is None or total <= 0 or count <= 0:
        raise ProviderError(f"{what}: no cost or parts in the reply")
    return total / count


def join_url(base: str, path: str) -> str:
    """`base` + `/` + `path`, whether or not `base` ends with a slash."""
    return f"{base.rstrip('/')}/{path.lstrip('/')}"


def basic_auth(login: str, password: str) -> dict[str, str]:
    """An `Authorization: Basic` header (aiohttp's BasicAuth is deprecated from 3.14)."""
    token = base64.b64encode(f"{login}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def paused(reason: str, error: ErrorKind) -> Outcome:
    """An account-wide failure (no money, credentials, configuration): pause the channel."""
    return Outcome.retry(reason, error, retry_after=PAUSE_SECONDS, pause_channel=True)


def rate_limited(reason: str, retry_after: float | None = None) -> Outcome:
    return Outcome.retry(
        reason, ErrorKind.RATE_LIMIT, retry_after=retry_after or RATE_LIMIT_SECONDS
    )


def outcome_from_error(error: ProviderError) -> Outcome:
    """A transport or configuration failure of a send, as an outcome."""
    if error.error in (ErrorKind.AUTH, ErrorKind.NO_MONEY, ErrorKind.CONFIG):
        return paused(str(error), error.error)
    if error.error is ErrorKind.RATE_LIMIT:
        return rate_limited(str(error))
    return Outcome.retry(str(error), error.error)


@dataclass(frozen=True, slots=True)
class HttpReply:
    """A provider's HTTP answer, fully read within the request timeout."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON with numbers-with-a-point as Decimal; None when it is not JSON."""
        try:
            return json.loads(self.body, parse_float=Decimal)
        except ValueError:
            return None

    @property
    def retry_after(self) -> float | None:
        """The `Retry-After` header in seconds (delta or HTTP date), when present."""
        raw = self.headers.get("Retry-After")
        if not raw:
            return None
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(UTC)).total_seconds())


def outcome_for_http_status(reply: HttpReply, provider: str) -> Outcome:
    """Classification by HTTP status alone, for replies the protocol does not explain."""
    where = f"{provider}: HTTP {reply.status}"
    if reply.status in (401, 403):
        return paused(f"{where}: credentials or IP refused", ErrorKind.AUTH)
    if reply.status == 402:
        return paused(f"{where}: insufficient funds", ErrorKind.NO_MONEY)
    if reply.status == 429:
        return rate_limited(f"{where}: rate limit", reply.retry_after)
    if reply.ok:
        return Outcome.retry(f"{provider}: unparseable reply", ErrorKind.TRANSIENT)
    return Outcome.retry(where, ErrorKind.TRANSIENT, retry_after=reply.retry_after)


def error_kind_for_http_status(status: int) -> ErrorKind:
    """The ErrorKind of a failed balance or status request, by HTTP status."""
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 402:
        return ErrorKind.NO_MONEY
    if status == 429:
        return ErrorKind.RATE_LIMIT
    return ErrorKind.TRANSIENT


@functools.lru_cache(maxsize=16)
def _total_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """One immutable timeout object per value, not one per request (it showed in profiles
    of the send path)."""
    return aiohttp.ClientTimeout(total=seconds)


async def http_request(provider: SmsProvider, method: str, url: str, **kwargs: Any) -> HttpReply:
    """One request through the provider's session with its total timeout.

    Raises ProviderError(TRANSIENT) on timeouts and connection errors; the URL is not in
    the message (some APIs take credentials as query parameters).
    """
    timeout = _total_timeout(provider.config.timeout_seconds)
    try:
        async with provider.session.request(method, url, timeout=timeout, **kwargs) as response:
            body = await response.read()
            return HttpReply(response.status, CIMultiDict(response.headers), body)
    except TimeoutError as exc:
        raise ProviderError(
            f"{provider.kind}: no reply within {provider.config.timeout_seconds:g} s",
            ErrorKind.TRANSIENT,
        ) from exc
    except aiohttp.ClientError as exc:
        raise ProviderError(
            f"{provider.kind}: connection failed ({type(exc).__name__})", ErrorKind.TRANSIENT
        ) from exc


def check_secret(token: str | None, request: CallbackRequest) -> None:
    """The callback URL must carry the service's `token` as `?secret=<token>`.

    For providers whose own callback signature is undocumented (SMSC, SMS Aero) or that
    have no `api_key` to check SMS.ru's hash: the secret goes into the handler URL
    registered at the provider. With no `token` there is nothing to check the callback
    against, so it is refused: anyone could post it (SMSC ids are our sequential ids).
    """
    if not token:
        raise CallbackRejected("no token is configured to authenticate callbacks")
    given = request.query.get("secret", "")
    if not same_secret(given, token):
        raise CallbackRejected("missing or wrong callback secret")


def callback_json(body: bytes) -> Any:
    """A callback body as JSON; CallbackMalformed when it is not JSON or nested so deeply
    that the parser gives up (RecursionError is not a ValueError)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise CallbackMalformed("the callback body is not valid JSON") from None


def callback_fields(request: CallbackRequest) -> dict[str, Any]:
    """Query, form and JSON-object body fields of a callback (later ones win), no secret."""
    fields: dict[str, Any] = {k: v for k, v in request.query.items() if k != "secret"}
    fields.update({key: values[0] for key, values in request.form.items() if values})
    if request.body.lstrip().startswith(b"{"):
        data = callback_json(request.body)
        if isinstance(data, dict):
            fields.update(data)
    return fields


def log_send(log: logging.Logger, kind: str, message: SmsMessage, outcome: Outcome) -> None:
    """One debug line per send attempt, phone masked (the worker logs the outcome at INFO)."""
    log.debug(
        "%s send %s to %s: %s %s",
        kind,
        message.notification_id,
        mask_phone(message.phone),
        outcome.kind.value,
        outcome.reason,
    )
