"""`/api/v1/event-types`: the catalogue's event types with their effective settings
(CONTRACT §3, §6); an operator changes flags and template files here."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import ConfigDict, Field, ValidationError

from dispatch.catalogue import EVENT_TYPES
from dispatch.config import EventTypeOverride, EventTypeSettings
from dispatch.render.renderer import Renderer
from handlers.common.answers import Answer, json_response
from handlers.common.auth import ADMIN_ACTOR, admin_only
from handlers.common.errors import ApiError, validation_error
from handlers.common.keys import DB, RENDERER, RUNTIME_CONFIG
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
    """Why `name` is not a template file under the renderer's directory, or None."""
    root = renderer.template_dir
    path = (root / name).resolve()
    if Path(name).is_absolute() or not path.is_relative_to(root) or not path.is_file():
        return f"template {name!r} does not exist under templates/"
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
