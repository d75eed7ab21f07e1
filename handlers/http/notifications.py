"""The notification journal in the admin API (CONTRACT §6): list, read, and the operator's
actions (status, confirm, cancel, resend, send-now).

Thin views: the actions decide in `dispatch.journal.actions`; a refused action is the
contract's 404 or 409.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Literal, Protocol, get_args

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.config import JsonDict

from dispatch.catalogue import EVENT_TYPES
from dispatch.intake.planner import Channel, RecipientKind
from dispatch.journal import actions
from dispatch.journal.actions import ActionOutcome, ActionResult, JournalEntry
from dispatch.journal.service import JournalActions
from dispatch.ops.sms_tools import TEST_SMS_EVENT_TYPE
from dispatch.render.segments import Encoding
from handlers.common.answers import Answer, IsoTime
from handlers.common.auth import ADMIN_ACTOR, admin_only
from handlers.common.cursors import (
    PAGE_LIMIT_DEFAULT,
    PAGE_LIMIT_MAX,
    decode_cursor,
    encode_cursor,
)
from handlers.common.errors import ApiError
from handlers.common.ids import row_id
from handlers.common.keys import DB, JOURNAL_ACTIONS
from handlers.common.parsing import json_body, validated
from storage.actions import presses
from storage.notifications import JournalFilter
from storage.statuses import Status

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

NOTE_MAX_CHARS = 1000
CURSOR_PREFIX = "n:"
"""The journal's cursors (each list has its own; see `handlers.common.cursors`)."""

# What `event_type` and `recipient` of a journal row can be: the catalogue's types and the
# test SMS (sent to an admin) besides. Documented, not enforced on the way out.
_EVENT_TYPE_SCHEMA: JsonDict = {"type": "string", "enum": [*EVENT_TYPES, TEST_SMS_EVENT_TYPE]}
_RECIPIENT_SCHEMA: JsonDict = {"type": "string", "enum": [*get_args(RecipientKind), "admin"]}


# --------------------------------------------------------------------------- requests


class JournalQuery(BaseModel):
    """Query parameters of `GET /api/v1/notifications`."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    status: Status | None = None
    """Only this status."""
    type: Annotated[str, Field(json_schema_extra={"enum": list(EVENT_TYPES)})] | None = None
    """Only this event type."""
    client_id: str | None = Field(default=None, min_length=1, max_length=64)
    """Only this client."""
    since: datetime | None = None
    """Created at or after this ISO 8601 time (UTC when no zone is given)."""
    limit: int = Field(default=PAGE_LIMIT_DEFAULT, ge=1, le=PAGE_LIMIT_MAX)
    """Page size."""
    cursor: str | None = None
    """`next_cursor` of the previous page."""

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str | None) -> str | None:
        if value is not None and value not in EVENT_TYPES:
            raise ValueError(f"unknown event type {value!r}; known: {', '.join(EVENT_TYPES)}")
        return value

    @field_validator("since")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @field_validator("cursor")
    @classmethod
    def _opaque(cls, value: str | None) -> str | None:
        if value is not None:
            decode_cursor(value, CURSOR_PREFIX)
        return value


class NoteIn(BaseModel):
    """The optional body of confirm / cancel / resend."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    note: str | None = Field(default=None, max_length=NOTE_MAX_CHARS)
    """Kept in the status history."""


class StatusChangeIn(NoteIn):
    """Mark a notification sent by hand or cancelled."""

    status: Literal["sent_manually", "cancelled"]


# --------------------------------------------------------------------------- answers


class HistoryEntry(Answer):
    """One step of a notification's status history."""

    at: IsoTime
    from_status: Status | None
    to_status: Status
    actor: str = Field(examples=["erp", ADMIN_ACTOR, "worker"])
    """Who moved it: `erp`, `admin:api`, `worker`, `provider:<name>`, a bot user…"""
    reason: str | None
    channel: str | None


class Notification(Answer):
    """A journal item."""

    id: int
    event_id: str | None
    """The ERP's event_id."""
    event_type: str = Field(json_schema_extra=_EVENT_TYPE_SCHEMA)
    recipient: str = Field(json_schema_extra=_RECIPIENT_SCHEMA)
    client_id: str | None
    manager_id: str | None
    channel: Channel | None
    phone: str | None
    status: Status
    text: str | None
    encoding: Encoding | None
    units: int | None
    """Septets (GSM-7) or UTF-16 code units (UCS-2) of an SMS."""
    segments: int | None
    reason: str | None
    attempts: int
    provider: str | None
    provider_message_id: str | None
    created_at: IsoTime
    updated_at: IsoTime
    sent_at: IsoTime | None
    delivered_at: IsoTime | None
    not_before: IsoTime | None = None
    """A `scheduled` notification (held by quiet hours) goes out at this time; else null."""

    @classmethod
    def of(cls, entry: JournalEntry) -> Notification:
        return cls.model_validate({**_columns(cls, entry), "event_id": entry.event_id})


class NotificationDetail(Notification):
    """A journal item with its status history, oldest step first."""

    history: list[HistoryEntry]

    @classmethod
    def of(cls, entry: JournalEntry) -> NotificationDetail:
        return cls.model_validate(
            {
                **_columns(cls, entry),
                "event_id": entry.event_id,
                "history": [HistoryEntry.model_validate(step) for step in entry.history],
            }
        )


class ActionPressed(Answer):
    """A client's press of one of the event's buttons (CONTRACT §9) and its delivery to
    `erp.callback_url`."""

    action: str = Field(examples=["confirm"])
    """The action's `id` from the event."""
    pressed_at: IsoTime
    delivered_at: IsoTime | None
    """When the ERP answered 2xx; null while it is still being retried."""
    attempts: int
    """POSTs to the ERP so far."""
    last_error: str | None
    """Why the last POST was not taken (null once delivered)."""


class NotificationRead(NotificationDetail):
    """A journal item with its status history and the presses of its ERP buttons."""

    actions_pressed: list[ActionPressed]


class NotificationPage(Answer):
    """One page of the journal, newest first."""

    items: list[Notification]
    next_cursor: str | None
    """Opaque; null on the last page."""


def _columns(model: type[Notification], entry: JournalEntry) -> dict[str, object]:
    row = entry.notification
    skip = {"event_id", "history", "actions_pressed"}
    return {name: getattr(row, name) for name in model.model_fields if name not in skip}


def _action_response(result: ActionResult) -> web.Response:
    """The notification after the action (its side effects are `JournalActions`'), or the
    reason it was refused."""
    if result.outcome is ActionOutcome.NOT_FOUND:
        raise ApiError(404, "not_found", result.message)
    if result.outcome is ActionOutcome.CONFLICT or result.entry is None:
        details = [{"current_status": result.current_status}]
        raise ApiError(409, "conflict", result.message, details)
    return NotificationDetail.of(result.entry).response()


# --------------------------------------------------------------------------- views


@routes.get("/api/v1/notifications")
@admin_only
async def list_notifications(request: web.Request) -> web.Response:
    """The journal, newest first, filtered; `next_cursor` is null on the last page."""
    query = validated(JournalQuery, dict(request.query), "invalid journal filter")
    where = JournalFilter(
        status=query.status.value if query.status else None,
        event_type=query.type,
        client_id=query.client_id,
        since=query.since,
        before_id=decode_cursor(query.cursor, CURSOR_PREFIX) if query.cursor else None,
        limit=query.limit,
    )
    page = await actions.journal_page(request.app[DB], where)
    following = page.next_before_id
    return NotificationPage(
        items=[Notification.of(entry) for entry in page.entries],
        next_cursor=encode_cursor(following, CURSOR_PREFIX) if following is not None else None,
    ).response()


@routes.get("/api/v1/notifications/{id}")
@admin_only
async def get_notification(request: web.Request) -> web.Response:
    notification_id = row_id(request, "notification")
    async with request.app[DB].sessions() as session:
        entry = await actions.load_entry(session, notification_id)
        pressed = await presses.presses_of(session, notification_id)
    if entry is None:
        raise ApiError(404, "not_found", f"notification {notification_id} does not exist")
    detail = NotificationDetail.of(entry)
    return NotificationRead(
        **dict(detail),
        actions_pressed=[ActionPressed.model_validate(press) for press in pressed],
    ).response()


@routes.post("/api/v1/notifications/{id}/status")
@admin_only
async def set_status(request: web.Request) -> web.Response:
    """Mark `sent_manually` or `cancelled`, with a note kept in the history."""
    notification_id = row_id(request, "notification")
    body = validated(StatusChangeIn, await json_body(request), "invalid status change")
    result = await request.app[JOURNAL_ACTIONS].set_status(
        notification_id, status=body.status, actor=ADMIN_ACTOR, note=body.note
    )
    return _action_response(result)


@routes.post("/api/v1/notifications/{id}/confirm")
@admin_only
async def confirm(request: web.Request) -> web.Response:
    return await _noted_action(request, lambda journal: journal.confirm)


@routes.post("/api/v1/notifications/{id}/cancel")
@admin_only
async def cancel(request: web.Request) -> web.Response:
    return await _noted_action(request, lambda journal: journal.cancel)


@routes.post("/api/v1/notifications/{id}/resend")
@admin_only
async def resend(request: web.Request) -> web.Response:
    return await _noted_action(request, lambda journal: journal.resend)


@routes.post("/api/v1/notifications/{id}/send-now")
@admin_only
async def send_now(request: web.Request) -> web.Response:
    """Send a notification held by quiet hours (`scheduled`) at once; live mode only."""
    return await _noted_action(request, lambda journal: journal.send_now)


class _NotedAction(Protocol):
    def __call__(
        self, notification_id: int, *, actor: str, note: str | None = None
    ) -> Awaitable[ActionResult]: ...


async def _noted_action(
    request: web.Request, pick: Callable[[JournalActions], _NotedAction]
) -> web.Response:
    """An action whose optional body is only a note (confirm, cancel, resend, send-now)."""
    notification_id = row_id(request, "notification")
    body = validated(NoteIn, await json_body(request, empty_ok=True), "invalid body")
    act = pick(request.app[JOURNAL_ACTIONS])
    return _action_response(await act(notification_id, actor=ADMIN_ACTOR, note=body.note))
