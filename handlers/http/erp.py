"""`POST /api/v1/events`: the ERP webhook (CONTRACT §2)."""

from __future__ import annotations

import functools
import logging
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from dispatch.catalogue import EVENT_TYPES
from dispatch.intake.planner import Channel, RecipientKind
from dispatch.intake.schemas import EventIn
from handlers.common import signature
from handlers.common.answers import Answer
from handlers.common.body import read_body
from handlers.common.errors import ApiError, validation_error
from handlers.common.guard import is_utf8
from handlers.common.jsonbody import parse_json
from handlers.common.keys import HTTP_CONTEXT, INGESTOR, METRICS
from handlers.common.net import is_direct_loopback
from storage.database import is_unavailable_error
from storage.statuses import Status

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()


class NotificationSummary(Answer):
    """One notification the event made."""

    id: int
    recipient: RecipientKind
    channel: Channel | None
    status: Status


class IngestResult(Answer):
    """What became of an event: its notifications, or the first call's for a repeat."""

    event_id: str
    duplicate: bool
    """A repeated `event_id`: nothing was created."""
    notifications: list[NotificationSummary]


def _check_content_type(request: web.Request) -> None:
    if request.content_type != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the event as Content-Type: application/json (UTF-8)",
        )
    if not is_utf8(request.charset):
        raise ApiError(415, "unsupported_media_type", "the event body must be UTF-8")


@functools.cache
def _warn_no_secret() -> None:
    logger.warning(
        "no webhook secret is configured (VESTNIK_WEBHOOK__SECRET): unsigned ERP events are "
        "accepted from direct loopback callers only (none relayed by a proxy)"
    )


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
    _warn_no_secret()
    if not is_direct_loopback(request.remote, request.headers):
        logger.warning(
            "unsigned ERP event refused from %s: no webhook secret configured and not a "
            "direct loopback call",
            request.remote,
        )
        # Worded as when a secret is set: the caller learns nothing about the configuration.
        if request.headers.get(signature.HEADER):
            raise ApiError(401, "invalid_signature", "signature does not match the body")
        raise ApiError(401, "invalid_signature", f"missing {signature.HEADER} header")


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
    body = await read_body(
        request, context.webhook_max_body_bytes, timeout=context.body_timeout_seconds
    )
    _authenticate(request, body)
    payload = _parse(body)
    if isinstance(payload.get("type"), str) and payload["type"] in EVENT_TYPES:
        seen.type = payload["type"]
    try:
        event = EventIn.model_validate(payload)
    except ValidationError as exc:
        raise validation_error(exc, "the event does not match the contract") from None
    if event.actions and not context.erp_callbacks:
        raise ApiError(
            422,
            "actions_not_configured",
            "the event carries actions, but no erp.callback_url is configured to receive "
            "the presses; configure it or send the event without actions",
            [{"loc": ["actions"], "msg": "erp.callback_url is not configured"}],
        )
    result = await request.app[INGESTOR].accept(event, payload)
    request.app[METRICS].events.labels(
        type=event.type, result="duplicate" if result.duplicate else "accepted"
    ).inc()
    # DEBUG: one line per event cost ~5 % of an event's CPU at INFO; the ingestor logs a
    # periodic summary at INFO instead (log.ingest_summary_seconds).
    if result.duplicate:
        logger.debug("duplicate ERP event %s", event.event_id)
    else:
        logger.debug(
            "ERP event %s (%s): %d notification(s)",
            event.event_id,
            event.type,
            len(result.notifications),
        )
    # Validated by the answer model as every view's answer, then written by pydantic's own
    # serializer straight to bytes (no intermediate dict and json.dumps on this hot path).
    return web.Response(
        body=IngestResult.model_validate(result.as_json()).model_dump_json().encode(),
        status=200 if result.duplicate else 202,
        content_type="application/json",
        charset="utf-8",
    )
