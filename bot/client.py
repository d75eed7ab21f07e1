"""A small HTTP client for the CLI: posting signed events as the ERP does."""

from __future__ import annotations

from typing import Any

import aiohttp

from handlers import signature


async def post_event(
    base_url: str, raw: bytes, *, secret: str | None, timeout_seconds: float = 30.0
) -> tuple[int, Any]:
    """POST `raw` to `<base_url>/api/v1/events`, signed when a secret is configured."""
    from bot.cli import CliError

    headers = {"Content-Type": "application/json"}
    if secret:
        headers[signature.HEADER] = signature.sign(secret, raw)
    url = base_url.rstrip("/") + "/api/v1/events"
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
