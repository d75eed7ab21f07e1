"""Managers and unmatched contacts in the admin API (an extension of CONTRACT §6).

The ERP creates and updates managers from its events but knows nothing of `is_admin`,
which decides who sees every client in the bot, gets the low-balance alerts in Telegram and
the chat messages of clients without a manager: `PUT /api/v1/managers/{id}` is where an
operator sets it. `GET /api/v1/unmatched-contacts` lists the phones shared with the bot that
matched nobody, so someone can add them to the ERP.

Same rules as the other admin views (`handlers.admin`): bearer token, strict JSON bodies,
the contract's error body.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from aiohttp import web
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from dispatch.intake.schemas import Phone
from handlers.common.errors import ApiError, validation_error
from handlers.common.ids import card_id
from handlers.common.keys import DB
from handlers.http.admin import (
    JOURNAL_LIMIT_DEFAULT,
    JOURNAL_LIMIT_MAX,
    admin_only,
    decode_cursor,
    encode_cursor,
    iso,
    json_body,
)
from storage import bot as bot_storage
from storage import directory
from storage.bot import UnmatchedContactRecord
from storage.directory import ChatLinkRecord
from storage.models import Manager

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

# Not the journal's `n:`: a journal cursor given here is refused instead of silently
# meaning a position in another table.
_CURSOR_PREFIX = "u:"


# --------------------------------------------------------------------------- request bodies


class ManagerPutIn(BaseModel):
    """`PUT /api/v1/managers/{id}`: the fields given are set; the rest are kept."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=255)
    """Required when the manager is new."""
    phone: Phone = None
    """Normalised to E.164 (default region RU) as in the ERP's events; null or empty clears
    it. Contacts shared with the bot are matched against it."""
    email: Annotated[str, Field(max_length=255)] | None = None
    """Null or empty clears it."""
    # Strict: "false" or 0 must not quietly become a boolean on the flag that grants access.
    is_admin: StrictBool | None = None
    """Sees every client's notifications in the bot, gets the low-balance alerts and the
    chat messages of clients without a manager."""

    @field_validator("email")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _no_null_for_required(self) -> ManagerPutIn:
        for name in ("name", "is_admin"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        fields = ("name", "phone", "email", "is_admin")
        return {name: getattr(self, name) for name in fields if name in self.model_fields_set}


class UnmatchedQuery(BaseModel):
    """Query parameters of `GET /api/v1/unmatched-contacts`."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=JOURNAL_LIMIT_DEFAULT, ge=1, le=JOURNAL_LIMIT_MAX)
    cursor: str | None = None
    """`next_cursor` of the previous page."""

    @field_validator("cursor")
    @classmethod
    def _opaque(cls, value: str | None) -> str | None:
        if value is not None:
            decode_cursor(value, _CURSOR_PREFIX)
        return value


# --------------------------------------------------------------------------- answers


def chat_link_json(link: ChatLinkRecord) -> dict[str, Any]:
    return {
        "chat_id": link.chat_id,
        "user_id": link.user_id,
        "stopped": link.stopped,
        "blocked": link.blocked,
        "linked_at": iso(link.linked_at),
        "updated_at": iso(link.updated_at),
    }


def manager_json(manager: Manager, links: list[ChatLinkRecord]) -> dict[str, Any]:
    return {
        "id": manager.id,
        "name": manager.name,
        "phone": manager.phone,
        "email": manager.email,
        "is_admin": bool(manager.is_admin),
        # As on the client card: whether a notification would go to Telegram now.
        "telegram_linked": any(not link.stopped and not link.blocked for link in links),
        "telegram_chats": [chat_link_json(link) for link in links],
        "created_at": iso(manager.created_at),
        "updated_at": iso(manager.updated_at),
    }


def unmatched_json(contact: UnmatchedContactRecord) -> dict[str, Any]:
    return {
        "id": contact.id,
        "chat_id": contact.chat_id,
        "user_id": contact.user_id,
        "phone": contact.phone,
        "name": contact.name,
        "created_at": iso(contact.created_at),
    }


# --------------------------------------------------------------------------- managers


async def _manager_card(request: web.Request, manager_id: str) -> dict[str, Any] | None:
    async with request.app[DB].sessions() as session:
        manager = await directory.get_manager(session, manager_id)
        if manager is None:
            return None
        links = await directory.manager_chat_links(session, manager_id)
    return manager_json(manager, links)


@routes.get("/api/v1/managers/{id}")
@admin_only
async def get_manager(request: web.Request) -> web.Response:
    """The manager card with its linked Telegram chats."""
    manager_id = card_id(request, "manager")
    card = await _manager_card(request, manager_id)
    if card is None:
        raise ApiError(404, "not_found", f"manager {manager_id} does not exist")
    return web.json_response(card)


@routes.put("/api/v1/managers/{id}")
@admin_only
async def put_manager(request: web.Request) -> web.Response:
    """Create or update a manager card (201 when created; a new manager needs a name)."""
    manager_id = card_id(request, "manager", creating=True)
    try:
        body = ManagerPutIn.model_validate(await json_body(request))
    except ValidationError as exc:
        raise validation_error(exc, "invalid manager card") from None
    changes = body.changes()
    async with request.app[DB].transaction() as session:
        if "name" in changes:
            created = await directory.save_manager(session, {"id": manager_id, **changes})
        elif await directory.update_manager(session, manager_id, changes):
            created = False
        else:
            raise ApiError(
                422,
                "validation_error",
                f"manager {manager_id} is new: name is required",
                [{"loc": ["name"], "message": "required for a new manager", "type": "missing"}],
            )
    logger.info(
        "manager %s %s by the admin API: %s",
        manager_id,
        "created" if created else "updated",
        ", ".join(sorted(changes)) or "nothing",
    )
    if "is_admin" in changes:
        # Who holds admin rights is worth finding in the logs later.
        logger.info("manager %s is_admin set to %s by the admin API", manager_id, body.is_admin)
    card = await _manager_card(request, manager_id)
    return web.json_response(card, status=201 if created else 200)


# --------------------------------------------------------------------------- unmatched contacts


@routes.get("/api/v1/unmatched-contacts")
@admin_only
async def list_unmatched_contacts(request: web.Request) -> web.Response:
    """Contacts shared with the bot that matched nobody, newest first, cursor-paged."""
    try:
        query = UnmatchedQuery.model_validate(dict(request.query))
    except ValidationError as exc:
        raise validation_error(exc, "invalid unmatched contacts query") from None
    async with request.app[DB].sessions() as session:
        rows = await bot_storage.list_unmatched_contacts(
            session,
            before_id=decode_cursor(query.cursor, _CURSOR_PREFIX) if query.cursor else None,
            limit=query.limit + 1,  # one extra row tells whether another page exists
        )
    page, more = rows[: query.limit], len(rows) > query.limit
    return web.json_response(
        {
            "items": [unmatched_json(row) for row in page],
            "next_cursor": encode_cursor(page[-1].id, _CURSOR_PREFIX) if more else None,
        }
    )
