"""`POST /api/v1/providers/{name}/status`: delivery receipts from SMS providers.

Each provider authenticates its callbacks its own way (Twilio's signature, SMS.ru's hash,
`?secret=<token>`, the `http` kind's bearer token); the adapter checks that, and a service
with nothing to check them against refuses them all (401). The caller is told only that the
callback is not authenticated, not which secret is missing. A receipt for an id we do not
know is answered 2xx, so a provider never retries it in a loop; it is parked only when it
can be the provider's id (see dispatch.receipts). One INFO line per callback, whatever the
number of receipts in it.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

from aiohttp import web

from dispatch.delivery.channels.sms.base import (
    CallbackMalformed,
    CallbackRejected,
    CallbackRequest,
)
from dispatch.delivery.receipts import ReceiptsRefused, apply_receipts, checked_receipts
from handlers.common.body import read_body
from handlers.common.errors import ApiError
from handlers.common.keys import DB, HTTP_CONTEXT, SMS_PROVIDERS

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
    # The whole body, however many TCP segments it came in (read(n) returned only the first).
    body = await read_body(
        request, MAX_CALLBACK_BYTES, timeout=request.app[HTTP_CONTEXT].body_timeout_seconds
    )
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
    # A service created on another replica a moment ago already gets its receipts here.
    provider = (await request.app[SMS_PROVIDERS].refresh(request.app[DB])).get(name)
    if provider is None:
        raise ApiError(404, "not_found", f"no SMS service named {name!r} is configured")
    callback = await _callback_request(request)
    try:
        result = provider.parse_callback(callback)
    except CallbackRejected as exc:
        logger.warning("delivery callback for %s refused from %s: %s", name, request.remote, exc)
        raise ApiError(
            401, "invalid_signature", "the delivery callback could not be authenticated"
        ) from None
    except CallbackMalformed as exc:
        raise ApiError(400, "invalid_json", str(exc)) from None
    try:
        receipts = checked_receipts(result.receipts)
    except ReceiptsRefused as exc:
        logger.warning("delivery callback from %s refused: %s", name, exc)
        raise ApiError(exc.status, exc.code, str(exc)) from None
    tally = await apply_receipts(
        request.app[DB],
        name,
        receipts,
        actor=f"provider:{name}",
        own_ids=provider.message_ids_are_ours,
    )
    logger.info(
        "delivery callback from %s: %d applied, %d unknown, %d in progress, %d parked, "
        "%d dropped",
        name,
        tally.applied,
        tally.unknown,
        tally.in_progress,
        tally.parked,
        tally.dropped,
    )
    return web.Response(text=result.reply_body, content_type=result.reply_content_type)
