"""`GET`/`PUT /api/v1/clients/{id}`: the client card and its per-type overrides (CONTRACT §6).

A client's own templates come from outside: they are compiled and dry-rendered in the
sandbox on the type's sample event before anything is stored.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.catalogue import EVENT_TYPES
from dispatch.intake.clients import save_client
from dispatch.intake.schemas import Phone
from dispatch.render import preview
from dispatch.render.limits import MAX_SOURCE_CHARS
from dispatch.render.preview import TEMPLATE_FIELDS
from dispatch.runtime_config import RuntimeConfig
from handlers.common.answers import Answer, IsoTime, answer
from handlers.common.auth import admin_only
from handlers.common.errors import ApiError
from handlers.common.ids import card_id
from handlers.common.keys import DB, RENDERER, RUNTIME_CONFIG
from handlers.common.parsing import json_body, validated
from storage import directory

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()


# --------------------------------------------------------------------------- requests


class ClientOverrideIn(BaseModel):
    """One event type on the client card; null means "as the event type says"."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    send: bool | None = None
    """Send this type to the client at all."""
    template_client: str | None = Field(default=None, max_length=MAX_SOURCE_CHARS)
    """Jinja2 source of the client's own client text (sandboxed); null/empty: the type's."""
    template_manager: str | None = Field(default=None, max_length=MAX_SOURCE_CHARS)
    """Jinja2 source of the client's own manager text (sandboxed); null/empty: the type's."""
    template_attachment: str | None = Field(default=None, max_length=MAX_SOURCE_CHARS)
    """The seed's «Шаблон вложения»: HTML (Jinja2, sandboxed, autoescaped) of a document
    for the client made from this type's events; null/empty: none."""

    @field_validator("template_client", "template_manager", "template_attachment")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value if value is not None and value.strip() else None


class ClientPutIn(BaseModel):
    """`PUT /api/v1/clients/{id}`: the fields given are set; the rest are kept."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, use_attribute_docstrings=True
    )

    name: str | None = Field(default=None, min_length=1, max_length=255)
    """Required when the client is new."""
    phone: Phone = None
    """Normalised to E.164 (default region RU); null or empty clears it."""
    manager_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    category: Annotated[str, Field(max_length=255)] | None = None
    blocked: bool | None = None
    overrides: dict[str, ClientOverrideIn] = Field(default_factory=dict)
    """Per event type code."""

    @field_validator("overrides")
    @classmethod
    def _known_types(cls, value: dict[str, ClientOverrideIn]) -> dict[str, ClientOverrideIn]:
        unknown = sorted(set(value) - set(EVENT_TYPES))
        if unknown:
            raise ValueError(f"unknown event type(s): {', '.join(unknown)}")
        return value

    @model_validator(mode="after")
    def _no_null_for_required(self) -> ClientPutIn:
        for name in ("name", "blocked"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def client_changes(self) -> dict[str, Any]:
        fields = ("name", "phone", "manager_id", "category", "blocked")
        return {name: getattr(self, name) for name in fields if name in self.model_fields_set}


# --------------------------------------------------------------------------- answers


class ClientOverride(Answer):
    """What the client card changes of one event type; null: as the event type says."""

    send: bool | None
    template_client: str | None
    template_manager: str | None
    template_attachment: str | None


class ClientCard(Answer):
    """A client with its per-type overrides."""

    id: str
    name: str
    phone: str | None
    """E.164."""
    manager_id: str | None
    category: str | None
    blocked: bool
    telegram_linked: bool
    """A linked chat is neither stopped nor blocked: notifications go to Telegram."""
    created_at: IsoTime
    updated_at: IsoTime
    overrides: dict[str, ClientOverride]
    """Per event type code."""


# --------------------------------------------------------------------------- views


async def _client_card(request: web.Request, client_id: str) -> dict[str, Any] | None:
    async with request.app[DB].sessions() as session:
        client = await directory.get_client(session, client_id)
        if client is None:
            return None
        overrides = await directory.list_client_type_settings(session, client_id)
        chats = await directory.active_chat_ids(session, client_id=client_id)
    fields = ("id", "name", "phone", "manager_id", "category", "blocked")
    return {
        **{name: getattr(client, name) for name in fields},
        "telegram_linked": bool(chats),
        "created_at": client.created_at,
        "updated_at": client.updated_at,
        "overrides": {row.event_type: ClientOverride.model_validate(row) for row in overrides},
    }


async def _template_problems(request: web.Request, body: ClientPutIn) -> list[dict[str, Any]]:
    """Compile and dry-render every own template of the body on its type's sample event
    (in the sandbox, off the event loop); one detail per refused template."""
    templates: dict[str, dict[str, str]] = {}
    for code, override in body.overrides.items():
        for field in TEMPLATE_FIELDS:
            source = getattr(override, field)
            if source is not None:
                templates.setdefault(code, {})[field] = source
    if not templates:
        return []
    async with request.app[DB].sessions() as session:
        notify = (await request.app[RUNTIME_CONFIG].current(session)).notify
    found = await preview.check_client_templates(request.app[RENDERER], templates, notify)
    return [
        {
            "loc": ["overrides", problem.code, problem.field],
            "message": problem.message,
            "type": "template",
            "line": problem.lineno,
        }
        for problem in found
    ]


async def _save_card(
    session: AsyncSession, runtime_config: RuntimeConfig, client_id: str, body: ClientPutIn
) -> bool:
    """Apply the card's fields; True when this created the client (it needs a name then)."""
    changes = body.client_changes()
    if await directory.update_client(session, client_id, changes):
        return False
    if body.name is None:
        raise ApiError(
            422,
            "validation_error",
            f"client {client_id} is new: name is required",
            [{"loc": ["name"], "message": "required for a new client", "type": "missing"}],
        )
    effective = await runtime_config.current(session)
    _, created = await save_client(session, {"id": client_id, **changes}, effective)
    return created


@routes.get("/api/v1/clients/{id}")
@admin_only
async def get_client(request: web.Request) -> web.Response:
    client_id = card_id(request, "client")
    card = await _client_card(request, client_id)
    if card is None:
        raise ApiError(404, "not_found", f"client {client_id} does not exist")
    return answer(ClientCard, card)


@routes.put("/api/v1/clients/{id}")
@admin_only
async def put_client(request: web.Request) -> web.Response:
    """Create or update a client card and its per-type overrides (201 when created)."""
    client_id = card_id(request, "client", creating=True)
    body = validated(ClientPutIn, await json_body(request), "invalid client card")
    problems = await _template_problems(request, body)
    if problems:
        raise ApiError(422, "validation_error", problems[0]["message"], problems)
    async with request.app[DB].transaction() as session:
        created = await _save_card(session, request.app[RUNTIME_CONFIG], client_id, body)
        for code, override in body.overrides.items():
            values = override.model_dump(exclude_unset=True)
            if values:
                await directory.put_client_type_setting(session, client_id, code, values)
    logger.info("client %s %s by the admin API", client_id, "created" if created else "updated")
    card = await _client_card(request, client_id)
    return answer(ClientCard, card, status=201 if created else 200)
