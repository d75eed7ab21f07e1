"""`/api/v1/event-types`: the catalogue's event types with their effective settings
(CONTRACT §3, §6); an operator changes flags and template files here, and edits the texts
themselves under `/templates/{recipient}` (CONTRACT §7: versions, history, revert)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import asdict
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dispatch.catalogue import EVENT_TYPES
from dispatch.config import EventTypeOverride, EventTypeSettings
from dispatch.render.library import RECIPIENTS, TemplateRecipient
from dispatch.render.renderer import Renderer
from dispatch.render.versions import (
    MAX_TEMPLATE_CHARS,
    TemplateLibrary,
    TemplateRefused,
    TemplateView,
)
from handlers.common.answers import Answer, IsoTime, json_response
from handlers.common.auth import ADMIN_ACTOR, admin_only
from handlers.common.errors import ApiError, validation_error
from handlers.common.keys import DB, RENDERER, RUNTIME_CONFIG, TEMPLATE_LIBRARY
from handlers.common.parsing import json_body, validated

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

EVENT_CODE_SCHEMA: dict[str, Any] = {"type": "string", "enum": list(EVENT_TYPES)}


class EventType(EventTypeSettings):
    """One event type: the catalogue's texts, its effective flags and template files."""

    model_config = ConfigDict(
        json_schema_serialization_defaults_required=True, use_attribute_docstrings=True
    )

    code: str = Field(json_schema_extra=EVENT_CODE_SCHEMA)
    title: str
    description: str
    template_client: str
    """A template file under templates/."""
    template_manager: str
    """A template file under templates/."""

    @classmethod
    def of(cls, code: str, settings: EventTypeSettings) -> EventType:
        kind = EVENT_TYPES[code]
        return cls.model_validate(
            {
                "code": code,
                "title": kind.title,
                "description": kind.description,
                **settings.model_dump(),
                "template_client": settings.template_client or kind.template_client,
                "template_manager": settings.template_manager or kind.template_manager,
            }
        )

    def response(self) -> web.Response:
        return json_response(self.model_dump(mode="json"))


class EventTypeList(Answer):
    """Every event type of the catalogue, in its order."""

    items: list[EventType]


def event_code(request: web.Request) -> str:
    """The `{code}` of the path; 404 when the catalogue has no such type."""
    code = request.match_info["code"]
    if code not in EVENT_TYPES:
        raise ApiError(404, "not_found", f"unknown event type {code!r}")
    return code


def template_file_problem(renderer: Renderer, name: str) -> str | None:
    """Why `name` is not a template file of the renderer's folders, or None."""
    if renderer.origin_of(name) is None:
        return f"template {name!r} does not exist under templates/ (nor in [templates] dir)"
    return None


@routes.get("/api/v1/event-types")
@admin_only
async def list_event_types(request: web.Request) -> web.Response:
    async with request.app[DB].sessions() as session:
        effective = await request.app[RUNTIME_CONFIG].current(session)
    return EventTypeList(
        items=[EventType.of(code, effective.event_type(code)) for code in EVENT_TYPES]
    ).response()


@routes.get("/api/v1/event-types/{code}")
@admin_only
async def get_event_type(request: web.Request) -> web.Response:
    code = event_code(request)
    async with request.app[DB].sessions() as session:
        effective = await request.app[RUNTIME_CONFIG].current(session)
    return EventType.of(code, effective.event_type(code)).response()


@routes.put("/api/v1/event-types/{code}")
@admin_only
async def put_event_type(request: web.Request) -> web.Response:
    """Change some settings of one event type; template names must be existing files."""
    code = event_code(request)
    changes = await json_body(request)
    given = validated(EventTypeOverride, changes, "invalid event type settings")
    problems: list[dict[str, Any]] = [
        {"loc": [field], "message": problem, "type": "template_not_found"}
        for field in ("template_client", "template_manager")
        if (name := getattr(given, field)) is not None
        and (problem := template_file_problem(request.app[RENDERER], name)) is not None
    ]
    if problems:
        raise ApiError(422, "validation_error", problems[0]["message"], problems)
    config = request.app[RUNTIME_CONFIG]
    try:
        async with request.app[DB].transaction() as session:
            updated = await config.update_event_type(session, code, changes, actor=ADMIN_ACTOR)
    except ValidationError as exc:
        raise validation_error(exc, "invalid event type settings") from None
    logger.info("event type %s changed through the admin API: %s", code, ", ".join(changes))
    return EventType.of(code, updated).response()


# --------------------------------------------------------------------------- templates

RECIPIENT_SCHEMA: dict[str, Any] = {"type": "string", "enum": list(RECIPIENTS)}


class TemplateVariable(Answer):
    """A value a template of the type may use, with the sample event's value."""

    name: str
    """Its path in Jinja (`document.number`, `document.lines[0].name`)."""
    type: Literal["string", "number", "boolean", "list", "object", "null"]
    example: str | int | float | bool | None
    """The sample event's value; null for a list or an object (their items follow)."""


class TemplateVersionItem(Answer):
    version: int
    saved_at: IsoTime
    actor: str


class Template(Answer):
    """A type's text for one recipient, as the next event uses it."""

    source: str | None
    """The Jinja2 source; null: the type has no Telegram text (the plain one goes)."""
    version: int
    """The stored version in use; 0 while a file is."""
    origin: Literal["package", "dir", "stored"] | None
    """Where the text comes from: the packaged file, `[templates] dir`, a saved version."""
    file: str
    """The file used when no saved version is (relative to the template folders)."""
    variables: list[TemplateVariable]
    history: list[TemplateVersionItem]
    """Every saved version, newest first."""

    @classmethod
    def of(cls, view: TemplateView) -> Template:
        return cls.model_validate(
            {
                "source": view.source,
                "version": view.version,
                "origin": view.origin,
                "file": view.file,
                "variables": [asdict(item) for item in view.variables],
                "history": [asdict(item) for item in view.history],
            }
        )


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    source: str = Field(min_length=1, max_length=MAX_TEMPLATE_CHARS)
    """Jinja2 source (a Telegram text is HTML: the data it prints is escaped)."""


class RevertIn(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    version: int = Field(ge=0, le=2**31 - 1)  # the column is a 32-bit integer
    """A saved version; 0 goes back to the template files."""


def _recipient(request: web.Request) -> TemplateRecipient:
    recipient = request.match_info["recipient"]
    if recipient not in RECIPIENTS:
        raise ApiError(
            404, "not_found", f"unknown recipient {recipient!r}; one of {', '.join(RECIPIENTS)}"
        )
    return recipient


_TEMPLATE_PATH = "/api/v1/event-types/{code}/templates/{recipient}"


@routes.get(_TEMPLATE_PATH)
@admin_only
async def get_template(request: web.Request) -> web.Response:
    code, recipient = event_code(request), _recipient(request)
    return Template.of(await request.app[TEMPLATE_LIBRARY].view(code, recipient)).response()


async def _changed(change: Awaitable[TemplateView]) -> web.Response:
    """The template after `change`, or the 422 naming the field (and the line)."""
    try:
        view = await change
    except TemplateRefused as exc:
        detail = {"loc": [exc.field], "message": str(exc), "type": exc.kind, "line": exc.lineno}
        raise ApiError(422, "validation_error", str(exc), [detail]) from None
    return Template.of(view).response()


def _library(request: web.Request) -> TemplateLibrary:
    return request.app[TEMPLATE_LIBRARY]


@routes.put(_TEMPLATE_PATH)
@admin_only
async def put_template(request: web.Request) -> web.Response:
    """Save a new version after a dry render on the type's sample event."""
    code, recipient = event_code(request), _recipient(request)
    body = validated(TemplateIn, await json_body(request), "invalid template")
    return await _changed(_library(request).save(code, recipient, body.source, actor=ADMIN_ACTOR))


@routes.post(_TEMPLATE_PATH + "/revert")
@admin_only
async def revert_template(request: web.Request) -> web.Response:
    code, recipient = event_code(request), _recipient(request)
    body = validated(RevertIn, await json_body(request), "invalid revert request")
    return await _changed(
        _library(request).revert(code, recipient, body.version, actor=ADMIN_ACTOR)
    )
