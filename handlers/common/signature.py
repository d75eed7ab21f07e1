"""Stripe-style webhook signatures: `X-Vestnik-Signature: t=<unix>,v1=<hex>`.

`<hex>` = HMAC-SHA256(secret, f"{t}." + raw body). Several `v1` values may be sent (secret
rotation); any one matching is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

HEADER = "X-Vestnik-Signature"
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_DIGEST = re.compile(r"[0-9A-Fa-f]{64}")


class SignatureError(Exception):
    """Why a signature was refused (safe to show the caller: it reveals no secret)."""


def compute(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The header value for `body`, signed now (or at `timestamp`)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return f"t={stamp},v1={compute(secret, stamp, body)}"


def verify(
    secret: str,
    header: str | None,
    body: bytes,
    *,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> None:
    """Raise `SignatureError` unless `header` signs `body` within the time window."""
    if not header:
        raise SignatureError(f"missing {HEADER} header")
    timestamp: int | None = None
    candidates: list[bytes] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            # Digits only, at most 12 (year 33658): int() of anything longer is slow, and a
            # huge one overflows the window arithmetic.
            if not _TIMESTAMP.fullmatch(value):
                raise SignatureError("signature timestamp must be unix seconds (1-12 digits)")
            timestamp = int(value)
        elif key == "v1" and value:
            # Exactly 64 hex digits, ASCII: compare_digest refuses non-ASCII text.
            if not _HEX_DIGEST.fullmatch(value):
                raise SignatureError("v1 must be 64 hexadecimal digits (HMAC-SHA256)")
            candidates.append(value.lower().encode("ascii"))
    if timestamp is None or not candidates:
        raise SignatureError(f"{HEADER} must look like t=<unix seconds>,v1=<hex>")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise SignatureError(
            f"signature timestamp is outside the {tolerance_seconds} s window "
            "(check the ERP server's clock)"
        )
    expected = compute(secret, timestamp, body).encode("ascii")
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureError("signature does not match the body")
