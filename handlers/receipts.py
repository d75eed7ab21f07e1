"""`POST /api/v1/providers/{name}/status`: delivery receipts from SMS providers.

Each provider authenticates its callbacks its own way (Twilio's signature, SMS.ru's hash…);
the adapter checks that. A receipt for an id we do not know is answered 2xx and logged, so
a provider never retries it in a loop.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

from aiohttp import web

from dispatch.channels.sms.base import CallbackRejected, CallbackRequest
from dispatch.receipts import apply_receipts
from handlers.errors import ApiError
from handlers.keys import DB, HTTP_CONTEXT, SMS_PROVIDERS

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

MAX_CALLBACK_BYTES = 256 * 1024


def _public_url(request: web.Request) -> str:
    """The URL as the provider called it: behind a proxy, `http.public_url` + the path."""
    base: str | None = request.app[HTTP_CONTEXT].public_url
    if base:
        return base.rstrip("/") + str(request.rel_url)
    return str(request.url)


async def _callback_request(request: web.Request) -> CallbackRequest:
    body = await request.content.read(MAX_CALLBACK_BYTES + 1)
    if len(body) > MAX_CALLBACK_BYTES:
        raise ApiError(413, "payload_too_large", "the callback body is too large")
    form: dict[str, list[str]] = {}
    if request.content_type == "application/x-www-form-urlencoded":
        form = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return CallbackRequest(
        method=request.method,
        url=_public_url(request),
        headers=dict(request.headers.items()),
        query=dict(request.query.items()),
        form=form,
        body=body,
    )


@routes.post("/api/v1/providers/{name}/status")
async def provider_status(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    provider = request.app[SMS_PROVIDERS].get(name)
    if provider is None:
        raise ApiError(404, "not_found", f"no SMS service named {name!r} is configured")
    callback = await _callback_request(request)
    try:
        result = provider.parse_callback(callback)
    except CallbackRejected as exc:
        logger.warning("delivery callback for %s refused from %s: %s", name, request.remote, exc)
        raise ApiError(401, "invalid_signature", str(exc)) from None
    tally = await apply_receipts(request.app[DB], name, result.receipts, actor=f"provider:{name}")
    logger.info(
        "delivery callback from %s: %d applied, %d unknown, %d in progress, %d parked",
        name,
        tally.applied,
        tally.unknown,
        tally.in_progress,
        tally.parked,
    )
    return web.Response(text=result.reply_body, content_type=result.reply_content_type)
