"""`POST /api/v1/events`: the ERP webhook (CONTRACT §2)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from dispatch.catalogue import EVENT_TYPES
from dispatch.schemas import EventIn
from handlers import signature
from handlers.errors import ApiError, validation_error
from handlers.jsonbody import parse_json
from handlers.keys import HTTP_CONTEXT, INGESTOR
from handlers.metrics import METRICS
from handlers.net import is_loopback
from storage.database import is_unavailable_error

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()


async def _read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None:
        if request.content_length > limit:
            raise ApiError(
                413, "payload_too_large", f"the event body is larger than {limit} bytes"
            )
        # The usual case, in one read: iterating over chunks cost more than the rest of
        # the request's own work.
        try:
            return await request.content.readexactly(request.content_length)
        except asyncio.IncompleteReadError:
            raise ApiError(
                400, "invalid_json", "the body ended before its Content-Length"
            ) from None
    body = bytearray()  # chunked transfer: no length announced
    async for chunk in request.content.iter_chunked(64 * 1024):
        body.extend(chunk)
        if len(body) > limit:
            raise ApiError(
                413, "payload_too_large", f"the event body is larger than {limit} bytes"
            )
    return bytes(body)


def _check_content_type(request: web.Request) -> None:
    if request.content_type != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the event as Content-Type: application/json (UTF-8)",
        )
    charset = request.charset
    if charset is not None and charset.lower().replace("_", "-") not in {"utf-8", "utf8"}:
        raise ApiError(415, "unsupported_media_type", "the event body must be UTF-8")


def _authenticate(request: web.Request, body: bytes) -> None:
    context = request.app[HTTP_CONTEXT]
    if context.webhook_secret:
        try:
            signature.verify(
                context.webhook_secret,
                request.headers.get(signature.HEADER),
                body,
                tolerance_seconds=context.webhook_tolerance_seconds,
            )
        except signature.SignatureError as exc:
            logger.warning("ERP webhook refused from %s: %s", request.remote, exc)
            raise ApiError(401, "invalid_signature", str(exc)) from None
        return
    if not is_loopback(request.remote):
        logger.warning("unsigned ERP event refused from non-loopback %s", request.remote)
        raise ApiError(
            401,
            "invalid_signature",
            "no webhook secret is configured: only unsigned events from loopback are accepted",
        )


def _parse(body: bytes) -> dict[str, Any]:
    document = parse_json(body)
    if not isinstance(document, dict):
        raise ApiError(422, "validation_error", "the event must be a JSON object")
    return document


@routes.post("/api/v1/events")
async def post_event(request: web.Request) -> web.Response:
    """Accept one signed ERP event; 202 when stored, 200 for a repeated `event_id`."""
    seen = _SeenType()
    try:
        response = await _post_event(request, seen)
    except ApiError as exc:
        request.app[METRICS].events.labels(type=seen.type, result=exc.code).inc()
        raise
    except Exception as exc:
        result = "storage_unavailable" if is_unavailable_error(exc) else "internal_error"
        request.app[METRICS].events.labels(type=seen.type, result=result).inc()
        raise
    return response


class _SeenType:
    """The event type as far as the request got (a bounded label for metrics)."""

    type = "unknown"


async def _post_event(request: web.Request, seen: _SeenType) -> web.Response:
    context = request.app[HTTP_CONTEXT]
    _check_content_type(request)
    body = await _read_limited(request, context.webhook_max_body_bytes)
    _authenticate(request, body)
    payload = _parse(body)
    if isinstance(payload.get("type"), str) and payload["type"] in EVENT_TYPES:
        seen.type = payload["type"]
    try:
        event = EventIn.model_validate(payload)
    except ValidationError as exc:
        raise validation_error(exc, "the event does not match the contract") from None
    result = await request.app[INGESTOR].accept(event, payload)
    request.app[METRICS].events.labels(
        type=event.type, result="duplicate" if result.duplicate else "accepted"
    ).inc()
    if result.duplicate:
        logger.info("duplicate ERP event %s", event.event_id)
    else:
        logger.info(
            "ERP event %s (%s): %d notification(s)",
            event.event_id,
            event.type,
            len(result.notifications),
        )
    return web.json_response(result.as_json(), status=200 if result.duplicate else 202)
