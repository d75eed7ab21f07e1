"""Previews in the admin API: an event's texts with its type's templates, and a text's SMS
figures. Nothing is stored."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from dispatch.intake.schemas import EventIn
from dispatch.render import preview
from dispatch.render.segments import Encoding
from handlers.common.answers import Answer, answer
from handlers.common.auth import admin_only
from handlers.common.keys import DB, RENDERER, RUNTIME_CONFIG, TEMPLATE_LIBRARY
from handlers.common.parsing import json_body, validated
from handlers.http.event_types import event_code

routes = web.RouteTableDef()

SMS_PREVIEW_MAX_CHARS = 10_000

# What the preview fills in when the body leaves it out (the path names the type).
EVENT_PREVIEW_OPTIONAL = ("type", "event_id", "occurred_at")


class SmsPreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    text: str = Field(max_length=SMS_PREVIEW_MAX_CHARS)
    """The text as it would be sent."""


class SmsPreview(Answer):
    """Encoding, size and parts of a text sent as SMS."""

    encoding: Encoding
    units: int
    """Septets (GSM-7) or UTF-16 code units (UCS-2)."""
    segments: int
    parts: list[str]


class TextPreview(Answer):
    """One rendered text with its SMS figures, or why it did not render."""

    text: str | None
    encoding: Encoding | None
    units: int | None
    """Septets (GSM-7) or UTF-16 code units (UCS-2)."""
    segments: int | None
    parts: list[str]
    error: str | None
    """Why the template did not render."""


class EventPreview(Answer):
    """The client's and the manager's texts of an event."""

    client: TextPreview
    manager: TextPreview


@routes.post("/api/v1/event-types/{code}/preview")
@admin_only
async def preview_event_type(request: web.Request) -> web.Response:
    """Render the event's client and manager texts with this type's templates; stores nothing."""
    code = event_code(request)
    payload = await json_body(request)
    # The path names the type; the body need not repeat it, nor invent an id or a time.
    payload["type"] = code
    payload.setdefault("event_id", "preview")
    payload.setdefault("occurred_at", datetime.now(UTC).isoformat())
    event = validated(EventIn, payload, "the event does not match the contract")
    async with request.app[DB].sessions() as session:
        result = await preview.preview_event(
            session,
            config=request.app[RUNTIME_CONFIG],
            renderer=request.app[RENDERER],
            event=event,
            stored=await request.app[TEMPLATE_LIBRARY].stored.current(session),
        )
    return answer(EventPreview, result.as_json())


@routes.post("/api/v1/sms/preview")
@admin_only
async def preview_sms(request: web.Request) -> web.Response:
    body = validated(SmsPreviewIn, await json_body(request), "invalid preview request")
    return answer(SmsPreview, preview.preview_sms(body.text).figures_json())
