"""Comparing a secret that came from outside (a header, a query parameter) with ours.

Every inbound credential check goes through `same_secret`: constant time, and a value that
is not valid text (aiohttp keeps undecodable header bytes as lone surrogates) is a mismatch,
never an exception that would turn an unauthenticated request into a 500.
"""

from __future__ import annotations

import hmac


def same_secret(given: str, expected: str) -> bool:
    """True when `given` equals `expected`, compared in constant time."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def bearer_matches(authorization: str, token: str) -> bool:
    """True when an `Authorization` header value is `Bearer <token>` (scheme in any case)."""
    scheme, _, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and same_secret(given.strip(), token)
