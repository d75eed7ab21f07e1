"""A small HTTP client for the CLI: posting signed events as the ERP does, and admin calls."""

from __future__ import annotations

from typing import Any

import aiohttp

from bot.cli.errors import CliError
from handlers.common import signature


async def post_event(
    base_url: str, raw: bytes, *, secret: str | None, timeout_seconds: float = 30.0
) -> tuple[int, Any]:
    """POST `raw` to `<base_url>/api/v1/events`, signed when a secret is configured."""
    headers = {"Content-Type": "application/json"}
    if secret:
        headers[signature.HEADER] = signature.sign(secret, raw)
    return await _post(base_url, "/api/v1/events", raw, headers, timeout_seconds)


async def post_admin(
    base_url: str, path: str, *, token: str | None, timeout_seconds: float = 120.0
) -> tuple[int, Any]:
    """POST an empty body to an admin API `path`, with the bearer token when there is one
    (without one the server accepts only loopback callers)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await _post(base_url, path, b"", headers, timeout_seconds)


async def _post(
    base_url: str, path: str, raw: bytes, headers: dict[str, str], timeout_seconds: float
) -> tuple[int, Any]:
    url = base_url.rstrip("/") + path
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_seconds)) as session,
            session.post(url, data=raw, headers=headers) as response,
        ):
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = {"raw": await response.text()}
            return response.status, body
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise CliError(
            f"cannot reach Vestnik at {base_url}: {exc or type(exc).__name__} "
            "(is `vestnik serve` running? use --url to point elsewhere)"
        ) from None
