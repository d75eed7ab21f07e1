"""Managers and unmatched contacts in the admin API (an extension of CONTRACT §6).

The ERP creates and updates managers from its events but knows nothing of `is_admin`,
which decides who sees every client in the bot, gets the low-balance alerts in Telegram and
the chat messages of clients without a manager: `PUT /api/v1/managers/{id}` is where an
operator sets it. `GET /api/v1/unmatched-contacts` lists the phones shared with the bot that
matched nobody, so someone can add them to the ERP.

Same rules as the other admin views: bearer token, strict JSON bodies, the contract's error
body.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from dispatch.intake.schemas import Phone
from handlers.common.answers import Answer, IsoTime, answer
from handlers.common.auth import admin_only
from handlers.common.cursors import (
    PAGE_LIMIT_DEFAULT,
    PAGE_LIMIT_MAX,
    decode_cursor,
    encode_cursor,
)
from handlers.common.errors import ApiError
from handlers.common.ids import card_id
from handlers.common.keys import DB
from handlers.common.parsing import json_body, validated
from storage import directory, inbox

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

# Not the journal's `n:`: a journal cursor given here is refused instead of silently
# meaning a position in another table.
CURSOR_PREFIX = "u:"


# --------------------------------------------------------------------------- requests


class ManagerPutIn(BaseModel):
    """`PUT /api/v1/managers/{id}`: the fields given are set; the rest are kept."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, use_attribute_docstrings=True
    )

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

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    limit: int = Field(default=PAGE_LIMIT_DEFAULT, ge=1, le=PAGE_LIMIT_MAX)
    """Page size."""
    cursor: str | None = None
    """`next_cursor` of the previous page."""

    @field_validator("cursor")
    @classmethod
    def _opaque(cls, value: str | None) -> str | None:
        if value is not None:
            decode_cursor(value, CURSOR_PREFIX)
        return value


# --------------------------------------------------------------------------- answers


class TelegramChat(Answer):
    """A Telegram chat linked to the manager, usable or not."""

    chat_id: int
    user_id: int | None
    stopped: bool
    """The user sent /stop."""
    blocked: bool
    """The user blocked the bot."""
    linked_at: IsoTime
    updated_at: IsoTime


class ManagerCard(Answer):
    """A manager with the Telegram chats linked to them."""

    id: str
    name: str
    phone: str | None
    """E.164."""
    email: str | None
    is_admin: bool
    """Sees every client in the bot, gets the low-balance alerts and the chat messages of
    clients without a manager."""
    telegram_linked: bool
    """At least one chat is neither stopped nor blocked."""
    telegram_chats: list[TelegramChat]
    created_at: IsoTime
    updated_at: IsoTime


class UnmatchedContact(Answer):
    """A contact shared with the bot whose phone matched no client or manager."""

    id: int
    chat_id: int
    user_id: int | None
    phone: str
    """E.164, as shared."""
    name: str | None
    """The name on the Telegram contact."""
    created_at: IsoTime


class UnmatchedContactPage(Answer):
    """One page of unmatched contacts, newest first."""

    items: list[UnmatchedContact]
    next_cursor: str | None
    """Opaque; null on the last page."""


# --------------------------------------------------------------------------- managers


async def _manager_card(request: web.Request, manager_id: str) -> dict[str, Any] | None:
    async with request.app[DB].sessions() as session:
        manager = await directory.get_manager(session, manager_id)
        if manager is None:
            return None
        links = await directory.manager_chat_links(session, manager_id)
    fields = ("id", "name", "phone", "email", "created_at", "updated_at")
    return {
        **{name: getattr(manager, name) for name in fields},
        "is_admin": bool(manager.is_admin),
        # As on the client card: whether a notification would go to Telegram now.
        "telegram_linked": any(not link.stopped and not link.blocked for link in links),
        "telegram_chats": [TelegramChat.model_validate(link) for link in links],
    }


@routes.get("/api/v1/managers/{id}")
@admin_only
async def get_manager(request: web.Request) -> web.Response:
    """The manager card with its linked Telegram chats."""
    manager_id = card_id(request, "manager")
    card = await _manager_card(request, manager_id)
    if card is None:
        raise ApiError(404, "not_found", f"manager {manager_id} does not exist")
    return answer(ManagerCard, card)


@routes.put("/api/v1/managers/{id}")
@admin_only
async def put_manager(request: web.Request) -> web.Response:
    """Create or update a manager card (201 when created; a new manager needs a name)."""
    manager_id = card_id(request, "manager", creating=True)
    body = validated(ManagerPutIn, await json_body(request), "invalid manager card")
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
    return answer(ManagerCard, card, status=201 if created else 200)


# --------------------------------------------------------------------------- unmatched contacts


@routes.get("/api/v1/unmatched-contacts")
@admin_only
async def list_unmatched_contacts(request: web.Request) -> web.Response:
    """Contacts shared with the bot that matched nobody, newest first, cursor-paged."""
    query = validated(UnmatchedQuery, dict(request.query), "invalid unmatched contacts query")
    async with request.app[DB].sessions() as session:
        rows = await inbox.list_unmatched_contacts(
            session,
            before_id=decode_cursor(query.cursor, CURSOR_PREFIX) if query.cursor else None,
            limit=query.limit + 1,  # one extra row tells whether another page exists
        )
    page, more = rows[: query.limit], len(rows) > query.limit
    return UnmatchedContactPage(
        items=[UnmatchedContact.model_validate(row) for row in page],
        next_cursor=encode_cursor(page[-1].id, CURSOR_PREFIX) if more else None,
    ).response()
