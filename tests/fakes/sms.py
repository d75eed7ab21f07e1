"""What every fake SMS provider shares: the loopback server, counters, failures, messages.

A fake is an aiohttp server on 127.0.0.1 (port 0) speaking one provider's wire protocol
(see tests/fakes/sms_*.py). Tests drive it through this API:

- `await fake.start()` → base URL to put in `SmsServiceConfig.base_url`; `await fake.stop()`
  (or `async with fake:`).
- `fake.sent`: every accepted message (`SentSms`: phone, text, sender, client id, time…);
  `fake.requests` counts every HTTP request, `fake.paths` per path.
- `fake.balance = Decimal(...)`: each sent part costs `fake.price_per_part` (1.90); a send
  that cannot be paid gets the provider's "no money" error. `fake.balance_as_string` picks
  the JSON shape of balance replies (None = the provider's documented shape).
- `fake.fail_next(kind, times=1)`: the next `times` requests (any endpoint) fail as `kind`:
  "no_money", "invalid_number", "auth", "rate_limit", "reject" in the provider's own error
  shape; "server_error" as HTTP `fake.server_error_status` (500); "timeout" by not answering
  for `fake.stall_seconds` (longer than any client timeout in the tests).
- `fake.latency`: seconds added to every request; `fake.rate_limit`: requests per second
  above which requests get the provider's rate-limit error (`fake.rate_limited` counts them).
- `fake.deliver(provider_id)` / `fake.fail(provider_id)`: change a message's state, which
  status requests then report; `fake.callback(provider_id, url)` builds the provider's
  delivery callback for that message (`FakeCallback`: POST it with `.post(session)`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, get_args

import aiohttp
from aiohttp import web

from dispatch.render.segments import segment_text

FailureKind = Literal[
    "no_money", "invalid_number", "auth", "rate_limit", "server_error", "timeout", "reject"
]
FAILURE_KINDS: tuple[str, ...] = get_args(FailureKind)
# Failures every fake renders the same way; the rest are in each provider's error shape.
_GENERIC_FAILURES = ("server_error", "timeout")

State = Literal["pending", "delivered", "failed"]


@dataclass
class SentSms:
    """One message a fake accepted."""

    provider_id: str
    phone: str
    text: str
    sender: str | None
    client_id: str | None
    parts: int
    cost: Decimal
    at: float = field(default_factory=time.time)
    state: State = "pending"


@dataclass(frozen=True)
class FakeCallback:
    """A delivery callback as the provider would send it."""

    url: str
    body: bytes
    headers: dict[str, str]
    method: str = "POST"

    async def post(self, session: aiohttp.ClientSession) -> tuple[int, str]:
        """Send it; returns (HTTP status, reply body)."""
        async with session.request(
            self.method, self.url, data=self.body, headers=self.headers
        ) as response:
            return response.status, await response.text()


class FakeSmsServer:
    """Lifecycle, counters, failure queue and message book of a fake provider."""

    base_path = "/"
    price_per_part = Decimal("1.90")
    currency = "RUB"

    def __init__(
        self,
        *,
        balance: Decimal = Decimal("1000.00"),
        latency: float = 0.0,
        rate_limit: float | None = None,
    ) -> None:
        self.balance = balance
        self.latency = latency
        self.rate_limit = rate_limit
        self.balance_as_string: bool | None = None
        self.server_error_status = 500
        self.stall_seconds = 5.0
        self.sent: list[SentSms] = []
        self.requests = 0
        self.rate_limited = 0
        self.paths: Counter[str] = Counter()
        self.base_url = ""
        self._failures: deque[str] = deque()
        self._window: deque[float] = deque()
        self._runner: web.AppRunner | None = None
        self._released = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(middlewares=[self._middleware])
        self.add_routes(app)
        # A stalled handler is cancelled when the client gives up, and stop() is quick.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}{self.base_path}"
        return self.base_url

    async def stop(self) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSmsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- test controls -----------------------------------------------------------------

    def fail_next(self, kind: FailureKind, times: int = 1) -> None:
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}; one of {FAILURE_KINDS}")
        self._failures.extend([kind] * times)

    def message(self, provider_id: str) -> SentSms:
        return next(m for m in self.sent if m.provider_id == provider_id)

    def deliver(self, provider_id: str) -> None:
        self.message(provider_id).state = "delivered"

    def fail(self, provider_id: str) -> None:
        self.message(provider_id).state = "failed"

    def callback(self, provider_id: str, url: str) -> FakeCallback:
        """The provider's delivery callback for this message, addressed to `url`."""
        raise NotImplementedError

    # -- for the provider handlers -----------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def failure_response(self, kind: str, request: web.Request) -> web.StreamResponse:
        """The provider's own reply for an injected failure or an exceeded rate limit."""
        raise NotImplementedError

    def price(self, text: str) -> tuple[int, Decimal]:
        """(parts, cost) of a text."""
        parts = max(1, segment_text(text).segments)
        return parts, parts * self.price_per_part

    def record(
        self,
        provider_id: str,
        *,
        phone: str,
        text: str,
        sender: str | None,
        client_id: str | None = None,
    ) -> SentSms:
        """Book an accepted message and charge it (the caller checked the balance)."""
        parts, cost = self.price(text)
        self.balance -= cost
        message = SentSms(provider_id, phone, text, sender, client_id, parts, cost)
        self.sent.append(message)
        return message

    def balance_value(self, documented_as_string: bool) -> Any:
        """The balance in the JSON shape chosen by `balance_as_string`."""
        as_string = (
            documented_as_string if self.balance_as_string is None else self.balance_as_string
        )
        return str(self.balance) if as_string else float(self.balance)

    @staticmethod
    def valid_number(phone: str) -> bool:
        digits = phone.lstrip("+")
        return digits.isdigit() and 10 <= len(digits) <= 15

    # -- internals ---------------------------------------------------------------------

    def _admit(self) -> bool:
        """Sliding one-second window of `rate_limit` requests."""
        if self.rate_limit is None:
            return True
        now = time.monotonic()
        while self._window and now - self._window[0] >= 1.0:
            self._window.popleft()
        if len(self._window) >= self.rate_limit:
            return False
        self._window.append(now)
        return True

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests += 1
        self.paths[request.path] += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        if not self._admit():
            self.rate_limited += 1
            return await self.failure_response("rate_limit", request)
        kind = self._failures.popleft() if self._failures else None
        if kind == "timeout":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), self.stall_seconds)
            return web.Response(status=504, text="stalled")
        if kind == "server_error":
            return web.Response(status=self.server_error_status, text="Internal Server Error")
        if kind is not None:
            return await self.failure_response(kind, request)
        response: web.StreamResponse = await handler(request)
        return response


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """(login, password) of an `Authorization: Basic` header, or None."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        login, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (login, password) if sep else None


def json_response(data: Any, status: int = 200, **kwargs: Any) -> web.Response:
    """JSON with Cyrillic as is, the way the Russian providers answer."""
    return web.json_response(
        data, status=status, dumps=lambda obj: json.dumps(obj, ensure_ascii=False), **kwargs
    )
