"""Where a request comes from."""

from __future__ import annotations

import ipaddress


def is_loopback(remote: str | None) -> bool:
    """True for 127.0.0.0/8 and ::1: the only callers trusted without credentials."""
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False
