"""Who may call the admin API: bearer `admin.token`, or direct loopback while none is set."""

from __future__ import annotations

import functools
import logging

from aiohttp import web

from dispatch.credentials import bearer_matches
from handlers.common.errors import ApiError, Handler
from handlers.common.keys import HTTP_CONTEXT
from handlers.common.net import is_direct_loopback

logger = logging.getLogger(__name__)

ADMIN_ACTOR = "admin:api"
"""The actor written into the history rows of what the admin API changes."""

# The same answer whatever is configured: a caller without credentials learns nothing about
# which secrets are set (the server log says it, once).
_UNAUTHORIZED = (
    "a valid bearer token is required (Authorization: Bearer …); only direct loopback calls "
    "may go without one, and only while no token is set"
)


@functools.cache
def _warn_no_token() -> None:
    logger.warning(
        "no admin token is configured (VESTNIK_ADMIN__TOKEN): the admin API answers direct "
        "loopback requests only (none relayed by a proxy)"
    )


def _check_admin(request: web.Request) -> None:
    """Bearer `admin.token`, compared in constant time; without a token, direct loopback
    callers only (a request relayed by a proxy on this host is not one)."""
    token = request.app[HTTP_CONTEXT].admin_token
    if not token:
        _warn_no_token()
        if is_direct_loopback(request.remote, request.headers):
            return
        logger.warning(
            "admin API refused from %s: no token configured and not a direct loopback call",
            request.remote,
        )
        raise ApiError(401, "unauthorized", _UNAUTHORIZED)
    if not bearer_matches(request.headers.get("Authorization", ""), token):
        logger.warning("admin API refused from %s: missing or wrong bearer token", request.remote)
        raise ApiError(401, "unauthorized", _UNAUTHORIZED)


def admin_only(handler: Handler) -> Handler:
    """Wrap a view so it runs only for an authorised admin (401 with WWW-Authenticate)."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            _check_admin(request)
        except ApiError as exc:
            response = exc.response()
            response.headers["WWW-Authenticate"] = 'Bearer realm="vestnik-admin"'
            return response
        return await handler(request)

    return guarded
