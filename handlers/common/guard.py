"""The request guard: what every request must look like before any view sees it.

Browsers are the threat here, not the ERP or the providers (they never send these
headers): a web page open on an operator's machine can make the browser call Vestnik.

- `Host` must name this server: a loopback name, the bind address, the host of
  `http.public_url` or one of `http.allowed_hosts`; else 421 (400 when missing or not a
  host). A DNS-rebinding page reaches 127.0.0.1 under its own name, so it is refused.
- A cross-site browser request is refused with 403: `Sec-Fetch-Site: cross-site` or
  `same-site`, or an `Origin` that is neither the request's own host nor the public_url
  host nor one of `http.allowed_hosts` (`Origin: null` included). One exception: a
  top-level navigation (GET) to a page of the web desk, `/desk/…`, so that a link to it
  works from another site; its forms still go through this rule.
- An admin request with a body (POST/PUT/PATCH/DELETE under `/api/v1/`, except the ERP
  webhook and the providers' receipts, which check their own) must say
  `Content-Type: application/json` (UTF-8); else 415. A form or `text/plain` body, which
  a page may send cross-origin without a preflight, is never parsed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import hdrs, web
from yarl import URL

from handlers.common.errors import ApiError
from handlers.common.keys import HTTP_CONTEXT
from handlers.common.net import host_of, is_loopback_host, normalise_host

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ADMIN_PREFIX = "/api/v1/"
# Outside callers that authenticate their own bodies (HMAC, provider signatures) and
# answer 415 themselves where their format requires it.
_OWN_FORMAT = ("/api/v1/events", "/api/v1/providers/")
_CROSS_SITE = frozenset({"cross-site", "same-site"})
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_DESK_PREFIX = "/desk/"
_WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "[::]"})
# Behind a TLS proxy the scheme of `Host` is unknown: both default ports are left out of
# the authority compared with an `Origin`.
_DEFAULT_PORTS = frozenset({80, 443})


def _authority(host: str, port: int | None) -> str:
    return host if port is None or port in _DEFAULT_PORTS else f"{host}:{port}"


def _configured_host(value: str) -> str | None:
    """A configured name, which may carry a port (`vestnik:8080`), as `host_of` gives it."""
    if not value.strip():
        return None
    return host_of(value) or value  # a bare IPv6 address (`::1`) is not Host syntax


def edge_hosts(
    bind_host: str, public_url: str | None, allowed: Iterable[str]
) -> tuple[frozenset[str], frozenset[str]]:
    """(names `Host` may carry besides loopback ones, hosts an `Origin` may name besides
    the request's own), from the settings."""
    origins: set[str] = set()
    for value in allowed:
        name = _configured_host(value)
        if name:
            origins.add(normalise_host(name))
    if public_url:
        public_host = URL(public_url).raw_host
        if public_host:
            origins.add(normalise_host(public_host))
    hosts = set(origins)
    if bind_host.strip().lower() not in _WILDCARD_BINDS:
        hosts.add(normalise_host(bind_host))
    return frozenset(hosts), frozenset(origins)


def _check_host(request: web.Request, allowed: frozenset[str]) -> str:
    """The request's own authority (`host[:port]`) once `Host` names this server."""
    header = request.headers.get(hdrs.HOST)
    if header is None:
        raise ApiError(400, "bad_request", "the request has no Host header")
    name = host_of(header)
    if name is None:
        raise ApiError(400, "bad_request", "the Host header is not a host name")
    if not (is_loopback_host(name) or name in allowed):
        logger.warning("request for a host this server does not serve refused")
        raise ApiError(
            421,
            "misdirected_request",
            "this server does not answer for that host name; an operator can add it to "
            "http.allowed_hosts",
        )
    _, _, port = header.strip().rpartition(":")
    has_port = port.isdigit() and not header.strip().endswith("]")
    return _authority(name, int(port) if has_port else None)


def _origin_authority(origin: str) -> tuple[str | None, str | None]:
    """(host, host[:port] as a Host header would carry it) of an `Origin` value."""
    try:
        url = URL(origin)
    except ValueError:
        return None, None
    if not url.scheme or not url.raw_host:
        return None, None
    host = normalise_host(url.raw_host)
    return host, _authority(host, url.explicit_port)


def _desk_navigation(request: web.Request) -> bool:
    """A person following a link to a desk page from another site (the bot's `/desk` link
    in Telegram Web): a top-level GET, which changes nothing and carries none of the desk's
    SameSite=Strict cookies."""
    headers = request.headers
    return (
        request.method in _SAFE_METHODS
        and request.path.startswith(_DESK_PREFIX)
        and headers.get("Sec-Fetch-Mode", "").lower() == "navigate"
        and headers.get("Sec-Fetch-Dest", "").lower() == "document"
    )


def _check_browser(request: web.Request, own_host: str, origins: frozenset[str]) -> None:
    site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
    if site in _CROSS_SITE and not _desk_navigation(request):
        logger.warning("cross-site browser request refused (Sec-Fetch-Site: %s)", site)
        raise ApiError(403, "forbidden", "cross-site requests are not accepted")
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        return
    host, authority = _origin_authority(origin.strip())
    if authority is not None and (authority == own_host or host in origins):
        return
    logger.warning("request from a foreign browser origin refused")
    raise ApiError(403, "forbidden", "requests from other web origins are not accepted")


def is_utf8(charset: str | None) -> bool:
    """A request charset that means UTF-8 (none given means UTF-8 for JSON)."""
    return charset is None or charset.lower().replace("_", "-") in {"utf-8", "utf8"}


def _has_body(request: web.Request) -> bool:
    if request.content_length is not None:
        return request.content_length > 0
    return request.body_exists  # chunked: a body whose length is not announced


def _check_media_type(request: web.Request) -> None:
    if request.method not in _BODY_METHODS:
        return
    path = request.path
    if not path.startswith(_ADMIN_PREFIX) or path.startswith(_OWN_FORMAT):
        return
    if not _has_body(request):
        return  # resend, confirm, run a job: nothing to parse
    if request.content_type != "application/json" or not is_utf8(request.charset):
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the body as Content-Type: application/json (UTF-8)",
        )


@web.middleware
async def request_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse misdirected, cross-site and wrongly typed requests before any view runs."""
    context = request.app[HTTP_CONTEXT]
    own_host = _check_host(request, context.allowed_hosts)
    _check_browser(request, own_host, context.origin_hosts)
    _check_media_type(request)
    return await handler(request)
