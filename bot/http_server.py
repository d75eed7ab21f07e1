"""The HTTP server's connection limits (issue 11, finding 5: slow clients were never cut off).

aiohttp has no header timeout, its default keep-alive is an hour, and it accepts connections
until the process runs out of file descriptors. `make_runner` builds the AppRunner that
`vestnik serve` (and the tests' server) runs, with:

- a header deadline: a connection must send its complete request head within
  `http.header_timeout_seconds` of connecting, or of the first byte of its next request;
- aiohttp's keep-alive timeout set to `http.keepalive_timeout_seconds` (idle connections);
- a cap on open connections (`http.max_connections`, lowered to fit the open-file limit):
  at the cap the oldest connection that is not inside a request is closed for the new one,
  so a flood of slow connections cannot starve `/healthz`; when every connection is busy
  the new one is closed at once.

Body deadlines are `handlers.body.read_body`'s (408 `request_timeout`).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any, cast

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from bot.settings import HttpSettings

logger = logging.getLogger(__name__)

# Descriptors kept out of the connection cap: the database pool, outgoing provider and
# Telegram calls, SMTP, log files, the listening sockets.
RESERVED_FDS = 128
MIN_CONNECTIONS = 16
# At most one warning line per interval while the cap is being hit (a flood must not also
# flood the log); the line carries the counts since the previous one.
WARN_INTERVAL_SECONDS = 60.0


def connection_cap(configured: int) -> int:
    """`http.max_connections`, lowered so accept() never fails for want of descriptors."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(MIN_CONNECTIONS, min(configured, soft - RESERVED_FDS))


class ConnectionGuard:
    """The open connections of one server and the limits on them."""

    def __init__(
        self, *, header_timeout: float, max_connections: int, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.loop = loop
        self._open: set[GuardedRequestHandler] = set()
        # Connections not inside a request (connected or idle, maybe sending a head), oldest
        # first: the ones closed for a newcomer at the cap.
        self._between: dict[GuardedRequestHandler, None] = {}
        self.header_timeouts = 0
        self.evicted = 0
        self.refused = 0
        self._unreported = [0, 0]  # evicted, refused since the last warning
        self._last_warning = -WARN_INTERVAL_SECONDS

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def admit(self, handler: GuardedRequestHandler) -> bool:
        if len(self._open) >= self.max_connections:
            if self._between:
                oldest = next(iter(self._between))
                self.release(oldest)
                oldest.force_close()
                self.evicted += 1
                self._unreported[0] += 1
            else:
                self.refused += 1
                self._unreported[1] += 1
                self._warn_at_cap()
                return False
            self._warn_at_cap()
        self._open.add(handler)
        self._between[handler] = None
        return True

    def release(self, handler: GuardedRequestHandler) -> None:
        self._open.discard(handler)
        self._between.pop(handler, None)

    def is_between_requests(self, handler: GuardedRequestHandler) -> bool:
        return handler in self._between

    def request_started(self, handler: GuardedRequestHandler) -> None:
        self._between.pop(handler, None)

    def request_finished(self, handler: GuardedRequestHandler) -> None:
        if handler in self._open:
            self._between.pop(handler, None)
            self._between[handler] = None  # now the newest idle one

    def _warn_at_cap(self) -> None:
        now = self.loop.time()
        if now - self._last_warning < WARN_INTERVAL_SECONDS:
            return
        self._last_warning = now
        evicted, refused = self._unreported
        self._unreported = [0, 0]
        logger.warning(
            "HTTP connection cap %d reached: %d idle or slow connection(s) closed for new "
            "ones, %d new connection(s) refused (every connection busy) since the last report",
            self.max_connections,
            evicted,
            refused,
        )


class GuardedRequestHandler(RequestHandler):
    """aiohttp's connection protocol with a header deadline and the connection cap."""

    __slots__ = ("_admitted", "_guard", "_header_timer")

    def __init__(self, manager: web.Server, *, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._header_timer: asyncio.TimerHandle | None = None
        self._admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._guard.admit(self):
            # Refused as cheaply as possible: no parser work, no task, the descriptor freed
            # now (abort: no lingering FIN handshake on our side).
            cast(asyncio.Transport, transport).abort()
            return
        self._admitted = True
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._admitted:
            return
        self._guard.release(self)
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # The first byte of a next request on a kept-alive connection starts its deadline
        # (until then the keep-alive timeout applies).
        if self._header_timer is None and self._guard.is_between_requests(self):
            self._arm_header_timer()
        super().data_received(data)

    def headers_received(self) -> None:
        """A complete request head has been parsed; its handler starts now."""
        self._cancel_header_timer()
        self._guard.request_started(self)

    async def finish_response(
        self, request: BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        result = await super().finish_response(request, resp, start_time)
        if resp.status == 408:
            # The body did not arrive in time (handlers.body): the client is stalled, so
            # close now instead of lingering for the rest of a body that is not coming.
            self.force_close()
        else:
            self._guard.request_finished(self)
        return result

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self._guard.loop.call_later(
            self._guard.header_timeout, self._header_timeout
        )

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        self._guard.header_timeouts += 1
        # Silent close, as nginx and Go do: a client this slow is not reading answers.
        logger.debug("closing a connection that sent no complete request head in time")
        self.force_close()


class GuardedServer(web.Server):
    """aiohttp's low-level server, building `GuardedRequestHandler` connections."""

    def __init__(self, base: web.Server, guard: ConnectionGuard) -> None:
        # `base` is what the app built (its handler, request factory and the runner's
        # keyword arguments); only the protocol class changes.
        super().__init__(
            base.request_handler,
            request_factory=self._factory(base.request_factory),
            handler_cancellation=base.handler_cancellation,
            loop=guard.loop,
            **base._kwargs,
        )
        self.guard = guard

    @staticmethod
    def _factory(inner: Any) -> Any:
        # The request factory is called once a request head is complete and its handler
        # is about to run: the one moment the header deadline must stop.
        def make_request(
            message: RawRequestMessage,
            payload: StreamReader,
            protocol: RequestHandler,
            writer: AbstractStreamWriter,
            task: asyncio.Task[None],
        ) -> BaseRequest:
            if isinstance(protocol, GuardedRequestHandler):
                protocol.headers_received()
            request: BaseRequest = inner(message, payload, protocol, writer, task)
            return request

        return make_request

    def __call__(self) -> GuardedRequestHandler:
        return GuardedRequestHandler(self, guard=self.guard, loop=self._loop, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """`web.AppRunner` whose server is a `GuardedServer`."""

    def __init__(self, app: web.Application, *, http: HttpSettings, **kwargs: Any) -> None:
        kwargs.setdefault("keepalive_timeout", http.keepalive_timeout_seconds)
        super().__init__(app, **kwargs)
        self._http = http
        self.guard: ConnectionGuard | None = None

    async def _make_server(self) -> web.Server:
        base = await super()._make_server()
        cap = connection_cap(self._http.max_connections)
        if cap < self._http.max_connections:
            logger.info(
                "http.max_connections lowered from %d to %d to fit the open-file limit",
                self._http.max_connections,
                cap,
            )
        self.guard = ConnectionGuard(
            header_timeout=self._http.header_timeout_seconds,
            max_connections=cap,
            loop=asyncio.get_running_loop(),
        )
        return GuardedServer(base, self.guard)


def make_runner(app: web.Application, http: HttpSettings, **kwargs: Any) -> GuardedAppRunner:
    """The runner `vestnik serve` and the tests' server use: one way to build the server."""
    return GuardedAppRunner(app, http=http, **kwargs)
