"""Where a request comes from, and which names it may address."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

#: Headers a reverse proxy adds. A request carrying any of them was relayed, so its socket
#: peer (the proxy, often on 127.0.0.1) says nothing about the real caller.
_PROXY_HEADERS = ("forwarded", "x-real-ip", "via")
_PROXY_PREFIX = "x-forwarded-"


def is_loopback(remote: str | None) -> bool:
    """True for 127.0.0.0/8 and ::1: the only callers trusted without credentials."""
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def is_loopback_host(name: str) -> bool:
    """True for `localhost`, 127.x.y.z and ::1 (bracketed or not): names only this machine
    reaches."""
    host = name.strip().rstrip(".").lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host == "localhost" or is_loopback(host)


def is_proxied(headers: Mapping[str, str]) -> bool:
    """True when a proxy relayed the request (Forwarded, X-Forwarded-*, X-Real-IP, Via)."""
    for key in headers:
        lowered = key.lower()
        if lowered in _PROXY_HEADERS or lowered.startswith(_PROXY_PREFIX):
            return True
    return False


def is_direct_loopback(remote: str | None, headers: Mapping[str, str]) -> bool:
    """A caller on this machine talking to us directly, not through a proxy: the only one
    trusted without credentials (no admin token, no webhook secret)."""
    return is_loopback(remote) and not is_proxied(headers)


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 5


def host_of(header: str) -> str | None:
    """The name in a `Host` header (`name`, `name:port`, `[v6]:port`), lowercased, without
    a trailing dot; None when it cannot be a host name."""
    value = header.strip().lower()
    if not value:
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        rest = value[end + 1 :]
        if rest and not (rest.startswith(":") and _is_port(rest[1:])):
            return None
        return value[: end + 1]
    name, colon, port = value.rpartition(":")
    if not colon:
        name = value
    elif not _is_port(port) or ":" in name:
        return None
    name = name.rstrip(".")
    return name or None


def normalise_host(name: str) -> str:
    """A configured name (`http.host`, `allowed_hosts`, a URL's host) as `host_of` returns
    it: lowercased, bracketed when IPv6, no trailing dot."""
    host = name.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        return host
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]"
    except ValueError:
        pass
    return host
