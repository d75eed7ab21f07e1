"""The ids on every log line of a context: `request_id` of the HTTP request, `update_id` of
the Telegram update, …, bound with `bind_log_context` / `log_context`, and the aiohttp and
aiogram middlewares that bind them for each request and update."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

REQUEST_ID_HEADER = "X-Request-Id"

# (key, value) pairs in binding order; a tuple, so no context can change another's.
_Ids = tuple[tuple[str, str], ...]
_log_context: ContextVar[_Ids] = ContextVar("vestnik_log_context", default=())


def current_log_context() -> dict[str, str]:
    """The ids bound in this context, in binding order."""
    return dict(_log_context.get())


def bind_log_context(**ids: object) -> Token[_Ids]:
    """Add ids to every log line of this context (and of tasks started from it).

    `None` values are ignored. Returns the token for `unbind_log_context`.
    """
    merged = dict(_log_context.get())
    merged.update({key: str(value) for key, value in ids.items() if value is not None})
    return _log_context.set(tuple(merged.items()))


def unbind_log_context(token: Token[_Ids]) -> None:
    """Restore the ids as they were before `bind_log_context` returned `token`."""
    _log_context.reset(token)


@contextmanager
def log_context(**ids: object) -> Iterator[dict[str, str]]:
    """`with log_context(update_id=42): ...` — the ids are on every line inside."""
    token = bind_log_context(**ids)
    try:
        yield current_log_context()
    finally:
        _log_context.reset(token)


# --- request and update ids ------------------------------------------------------------

_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

REQUEST_ID: Any = web.RequestKey("request_id", str) if hasattr(web, "RequestKey") else "request_id"
"""`request[REQUEST_ID]`: the id of the request being handled (a plain str key before
aiohttp 3.13)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_middleware(header: str = REQUEST_ID_HEADER) -> Middleware:
    """An aiohttp middleware: the request's `X-Request-Id` (when it is 1-128 characters of
    A-Z a-z 0-9 . _ : -), else a new one, bound as `request_id` to every log line of the
    request, stored as `request[REQUEST_ID]` and echoed in the response header.

    Put it first in `web.Application(middlewares=[...])` so it also covers the others.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get(header, "")
        request_id = given if _REQUEST_ID_RE.fullmatch(given) else new_request_id()
        request[REQUEST_ID] = request_id
        token = bind_log_context(request_id=request_id)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers[header] = request_id
            raise
        finally:
            _log_context.reset(token)
        if not response.prepared:
            response.headers[header] = request_id
        return response

    return middleware


async def update_log_middleware(
    handler: Callable[[Any, dict[str, Any]], Awaitable[Any]],
    event: Any,
    data: dict[str, Any],
) -> Any:
    """An aiogram outer middleware (`dispatcher.update.outer_middleware(...)`): binds the
    update's `update_id` to every log line while it is handled."""
    with log_context(update_id=getattr(event, "update_id", None)):
        return await handler(event, data)
