"""The admin API (CONTRACT §6), bearer `VESTNIK_ADMIN__TOKEN`.

Thin views: parse and authorise here, decide in `dispatch` (actions, previews, runtime
settings), read and write through `storage`. Every refusal is the contract's error body.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from aiohttp import web
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.catalogue import EVENT_TYPES
from dispatch.config import (
    EventTypeOverride,
    EventTypeSettings,
    NotifyMode,
    NotifySettings,
    SmsServiceConfig,
)
from dispatch.credentials import bearer_matches
from dispatch.intake.clients import save_client
from dispatch.intake.schemas import EventIn, Phone
from dispatch.journal import actions
from dispatch.journal.actions import ActionResult, JournalEntry, Outcome
from dispatch.render import preview
from dispatch.render.renderer import MAX_SOURCE_CHARS, Renderer
from dispatch.runtime_config import RuntimeConfig, SettingsRejected
from handlers.common.body import ADMIN_MAX_BODY_BYTES, read_body
from handlers.common.errors import ApiError, validation_error
from handlers.common.ids import card_id
from handlers.common.jsonbody import parse_json
from handlers.common.keys import DB, HTTP_CONTEXT, RENDERER, RUNTIME_CONFIG, STATUS_CHANGES
from handlers.common.net import is_direct_loopback
from handlers.http import openapi
from storage import directory
from storage.models import Client, ClientTypeSetting, Notification, NotificationHistory
from storage.notifications import JournalFilter
from storage.statuses import Status

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

#: The SMS services of the config file, for the read-only list in `GET /api/v1/settings`.
SMS_SERVICES = web.AppKey[tuple[SmsServiceConfig, ...]]("admin_sms_services")
#: Wakes the delivery workers when an action makes a notification due (they also poll).
QUEUE_WAKE = web.AppKey[Callable[[], None]]("admin_queue_wake")

ACTOR = "admin:api"
JOURNAL_LIMIT_DEFAULT = 50
JOURNAL_LIMIT_MAX = 500
SMS_PREVIEW_MAX_CHARS = 10_000
NOTE_MAX_CHARS = 1000
# Ids are BIGINT; a larger number can name no row (and would overflow the driver).
_MAX_ID = 2**63 - 1
_CURSOR_PREFIX = "n:"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)


# --------------------------------------------------------------------------- auth


@functools.cache
def _warn_no_token() -> None:
    logger.warning(
        "no admin token is configured (VESTNIK_ADMIN__TOKEN): the admin API answers direct "
        "loopback requests only (none relayed by a proxy)"
    )


# The same answer whatever is configured: a caller without credentials learns nothing about
# which secrets are set (the server log says it, once).
_UNAUTHORIZED = (
    "a valid bearer token is required (Authorization: Bearer …); only direct loopback calls "
    "may go without one, and only while no token is set"
)


def _check_admin(request: web.Request) -> None:
    """Bearer `admin.token`, compared in constant time; without a token, direct loopback
    callers only (a request relayed by a proxy on this host is not one)."""
    token = request.app[HTTP_CONTEXT].admin_token
    if not token:
        _warn_no_token()
        if is_direct_loopback(request.remote, request.headers):
            return
        logger.warning(
            "admin API refused from %s: no token configured and not a direct loopback call",
            request.remote,
        )
        raise ApiError(401, "unauthorized", _UNAUTHORIZED)
    if not bearer_matches(request.headers.get("Authorization", ""), token):
        logger.warning("admin API refused from %s: missing or wrong bearer token", request.remote)
        raise ApiError(401, "unauthorized", _UNAUTHORIZED)


def admin_only(handler: Handler) -> Handler:
    """Wrap a view so it runs only for an authorised admin (401 with WWW-Authenticate)."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            _check_admin(request)
        except ApiError as exc:
            response = exc.response()
            response.headers["WWW-Authenticate"] = 'Bearer realm="vestnik-admin"'
            return response
        return await handler(request)

    return guarded


# --------------------------------------------------------------------------- request bodies


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JournalQuery(_Body):
    """Query parameters of `GET /api/v1/notifications`."""

    status: Status | None = None
    type: str | None = None
    client_id: str | None = Field(default=None, min_length=1, max_length=64)
    since: datetime | None = None
    """ISO 8601; without a zone it is UTC."""
    limit: int = Field(default=JOURNAL_LIMIT_DEFAULT, ge=1, le=JOURNAL_LIMIT_MAX)
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
            decode_cursor(value)
        return value


class NoteIn(_Body):
    """The optional body of confirm / cancel / resend."""

    note: str | None = Field(default=None, max_length=NOTE_MAX_CHARS)


class StatusChangeIn(NoteIn):
    status: Literal["sent_manually", "cancelled"]


class SmsPreviewIn(_Body):
    text: str = Field(max_length=SMS_PREVIEW_MAX_CHARS)


class ClientOverrideIn(_Body):
    """One event type on the client card; null means "as the event type says"."""

    send: bool | None = None
    template_client: str | None = Field(default=None, max_length=MAX_SOURCE_CHARS)
    """Jinja2 source of the client's own client text (sandboxed); null/empty: the type's."""
    template_manager: str | None = Field(default=None, max_length=MAX_SOURCE_CHARS)

    @field_validator("template_client", "template_manager")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value if value is not None and value.strip() else None


class ClientPutIn(_Body):
    """`PUT /api/v1/clients/{id}`: the fields given are set; the rest are kept."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=255)
    phone: Phone = None
    """Normalised to E.164 (default region RU); null or empty clears it."""
    manager_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    category: Annotated[str, Field(max_length=255)] | None = None
    blocked: bool | None = None
    overrides: dict[str, ClientOverrideIn] = Field(default_factory=dict)

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


# --------------------------------------------------------------------------- parsing


async def json_body(request: web.Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """The body as a JSON object (400 when not JSON, 422 when not an object)."""
    raw = await read_body(
        request, ADMIN_MAX_BODY_BYTES, timeout=request.app[HTTP_CONTEXT].body_timeout_seconds
    )
    if not raw.strip() and empty_ok:
        return {}
    document = parse_json(raw)
    if not isinstance(document, dict):
        raise ApiError(422, "validation_error", "the body must be a JSON object")
    return document


def _validate(model: type[M], data: Mapping[str, Any], message: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, message) from None


def _notification_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if re.fullmatch(r"[0-9]{1,19}", raw) and 0 < int(raw) <= _MAX_ID:
        return int(raw)
    raise ApiError(404, "not_found", f"notification {raw} does not exist")


def _event_code(request: web.Request) -> str:
    code = request.match_info["code"]
    if code not in EVENT_TYPES:
        raise ApiError(404, "not_found", f"unknown event type {code!r}")
    return code


def encode_cursor(before_id: int, prefix: str = _CURSOR_PREFIX) -> str:
    """An opaque page token: where the next page of a list starts. Each list has its own
    `prefix`, so a cursor of one list is refused by another instead of meaning a position
    in a different table."""
    return base64.urlsafe_b64encode(f"{prefix}{before_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, prefix: str = _CURSOR_PREFIX) -> int:
    """The id a cursor of the list with `prefix` stands for; ValueError when it is not one
    of that list's."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("not a cursor returned by this list") from None
    number = text.removeprefix(prefix)
    if not text.startswith(prefix) or not re.fullmatch(r"[0-9]{1,19}", number):
        raise ValueError("not a cursor returned by this list")
    if not 0 < int(number) <= _MAX_ID:
        raise ValueError("not a cursor returned by this list")
    return int(number)


# --------------------------------------------------------------------------- answers


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def history_json(row: NotificationHistory) -> dict[str, Any]:
    return {
        "at": iso(row.at),
        "from_status": row.from_status,
        "to_status": row.to_status,
        "actor": row.actor,
        "reason": row.reason,
        "channel": row.channel,
    }


def notification_json(entry: JournalEntry, *, with_history: bool = False) -> dict[str, Any]:
    """A journal item; with `history` for the single-notification answers."""
    row: Notification = entry.notification
    item: dict[str, Any] = {
        "id": row.id,
        "event_id": entry.event_id,
        "event_type": row.event_type,
        "recipient": row.recipient,
        "client_id": row.client_id,
        "manager_id": row.manager_id,
        "channel": row.channel,
        "phone": row.phone,
        "status": row.status,
        "text": row.text,
        "encoding": row.encoding,
        "units": row.units,
        "segments": row.segments,
        "reason": row.reason,
        "attempts": row.attempts,
        "provider": row.provider,
        "provider_message_id": row.provider_message_id,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "sent_at": iso(row.sent_at),
        "delivered_at": iso(row.delivered_at),
    }
    if with_history:
        item["history"] = [history_json(step) for step in entry.history]
    return item


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def settings_json(
    notify: NotifySettings, services: tuple[SmsServiceConfig, ...]
) -> dict[str, Any]:
    """Effective notify settings plus the SMS services by name and kind (no credentials)."""
    body = notify.model_dump(mode="json")
    body["low_balance_threshold"] = _number(notify.low_balance_threshold)
    body["sms_services"] = [
        {"name": service.name, "kind": service.kind, "sender": service.sender}
        for service in services
    ]
    return body


def event_type_json(code: str, settings: EventTypeSettings) -> dict[str, Any]:
    """One event type: catalogue texts, effective flags and template files."""
    kind = EVENT_TYPES[code]
    return {
        "code": code,
        "title": kind.title,
        "description": kind.description,
        "confirm_before_send": settings.confirm_before_send,
        "send_to_client": settings.send_to_client,
        "send_to_manager": settings.send_to_manager,
        "tracked_by_manager": settings.tracked_by_manager,
        "default_for_new_clients": settings.default_for_new_clients,
        "template_client": settings.template_client or kind.template_client,
        "template_manager": settings.template_manager or kind.template_manager,
    }


def client_json(
    client: Client, overrides: list[ClientTypeSetting], *, telegram_linked: bool
) -> dict[str, Any]:
    return {
        "id": client.id,
        "name": client.name,
        "phone": client.phone,
        "manager_id": client.manager_id,
        "category": client.category,
        "blocked": client.blocked,
        "telegram_linked": telegram_linked,
        "created_at": iso(client.created_at),
        "updated_at": iso(client.updated_at),
        "overrides": {
            row.event_type: {
                "send": row.send,
                "template_client": row.template_client,
                "template_manager": row.template_manager,
            }
            for row in overrides
        },
    }


def _action_response(request: web.Request, result: ActionResult) -> web.Response:
    if result.ok:
        # The bot edits the managers' prompts about it (their buttons are moot now).
        request.app[STATUS_CHANGES]([result.notification_id])
    if result.outcome is Outcome.NOT_FOUND:
        raise ApiError(404, "not_found", result.message)
    if result.outcome is Outcome.CONFLICT or result.entry is None:
        details = [{"current_status": result.current_status}]
        raise ApiError(409, "conflict", result.message, details)
    return web.json_response(notification_json(result.entry, with_history=True))


# --------------------------------------------------------------------------- journal


@routes.get("/api/v1/notifications")
@admin_only
async def list_notifications(request: web.Request) -> web.Response:
    """The journal, newest first, filtered; `next_cursor` is null on the last page."""
    query = _validate(JournalQuery, dict(request.query), "invalid journal filter")
    where = JournalFilter(
        status=query.status.value if query.status else None,
        event_type=query.type,
        client_id=query.client_id,
        since=query.since,
        before_id=decode_cursor(query.cursor) if query.cursor else None,
        limit=query.limit,
    )
    page = await actions.journal_page(request.app[DB], where)
    return web.json_response(
        {
            "items": [notification_json(entry) for entry in page.entries],
            "next_cursor": encode_cursor(page.next_before_id)
            if page.next_before_id is not None
            else None,
        }
    )


@routes.get("/api/v1/notifications/{id}")
@admin_only
async def get_notification(request: web.Request) -> web.Response:
    notification_id = _notification_id(request)
    async with request.app[DB].sessions() as session:
        entry = await actions.load_entry(session, notification_id)
    if entry is None:
        raise ApiError(404, "not_found", f"notification {notification_id} does not exist")
    return web.json_response(notification_json(entry, with_history=True))


async def _mode(request: web.Request) -> NotifyMode:
    async with request.app[DB].sessions() as session:
        mode: NotifyMode = (await request.app[RUNTIME_CONFIG].current(session)).notify.mode
    return mode


@routes.post("/api/v1/notifications/{id}/status")
@admin_only
async def set_status(request: web.Request) -> web.Response:
    """Mark `sent_manually` or `cancelled`, with a note kept in the history."""
    notification_id = _notification_id(request)
    body = _validate(StatusChangeIn, await json_body(request), "invalid status change")
    result = await actions.set_status(
        request.app[DB], notification_id, status=body.status, actor=ACTOR, note=body.note
    )
    return _action_response(request, result)


@routes.post("/api/v1/notifications/{id}/confirm")
@admin_only
async def confirm(request: web.Request) -> web.Response:
    notification_id = _notification_id(request)
    body = _validate(NoteIn, await json_body(request, empty_ok=True), "invalid body")
    result = await actions.confirm(
        request.app[DB],
        notification_id,
        mode=await _mode(request),
        actor=ACTOR,
        note=body.note,
        wake=request.app.get(QUEUE_WAKE),
    )
    return _action_response(request, result)


@routes.post("/api/v1/notifications/{id}/cancel")
@admin_only
async def cancel(request: web.Request) -> web.Response:
    notification_id = _notification_id(request)
    body = _validate(NoteIn, await json_body(request, empty_ok=True), "invalid body")
    result = await actions.cancel(request.app[DB], notification_id, actor=ACTOR, note=body.note)
    return _action_response(request, result)


@routes.post("/api/v1/notifications/{id}/resend")
@admin_only
async def resend(request: web.Request) -> web.Response:
    notification_id = _notification_id(request)
    body = _validate(NoteIn, await json_body(request, empty_ok=True), "invalid body")
    result = await actions.resend(
        request.app[DB],
        notification_id,
        mode=await _mode(request),
        actor=ACTOR,
        note=body.note,
        wake=request.app.get(QUEUE_WAKE),
    )
    return _action_response(request, result)


# --------------------------------------------------------------------------- settings


@routes.get("/api/v1/settings")
@admin_only
async def get_settings(request: web.Request) -> web.Response:
    async with request.app[DB].sessions() as session:
        effective = await request.app[RUNTIME_CONFIG].current(session)
    return web.json_response(settings_json(effective.notify, request.app.get(SMS_SERVICES, ())))


@routes.put("/api/v1/settings")
@admin_only
async def put_settings(request: web.Request) -> web.Response:
    """Change some notify settings; the others keep their values. Nothing is stored on 422."""
    changes = await json_body(request)
    if "sms_services" in changes:
        raise ApiError(
            422,
            "validation_error",
            "sms_services is read-only here: configure [[sms_services]] in the config file",
            [{"loc": ["sms_services"], "message": "read-only", "type": "read_only"}],
        )
    try:
        async with request.app[DB].transaction() as session:
            notify = await request.app[RUNTIME_CONFIG].update_notify(session, changes, actor=ACTOR)
    except ValidationError as exc:
        raise validation_error(exc, "invalid settings") from None
    except SettingsRejected as exc:
        raise ApiError(422, "settings_rejected", str(exc)) from None
    logger.info("notify settings changed through the admin API: %s", ", ".join(sorted(changes)))
    return web.json_response(settings_json(notify, request.app.get(SMS_SERVICES, ())))


# --------------------------------------------------------------------------- event types


@routes.get("/api/v1/event-types")
@admin_only
async def list_event_types(request: web.Request) -> web.Response:
    async with request.app[DB].sessions() as session:
        effective = await request.app[RUNTIME_CONFIG].current(session)
    return web.json_response(
        {"items": [event_type_json(code, effective.event_type(code)) for code in EVENT_TYPES]}
    )


@routes.get("/api/v1/event-types/{code}")
@admin_only
async def get_event_type(request: web.Request) -> web.Response:
    code = _event_code(request)
    async with request.app[DB].sessions() as session:
        effective = await request.app[RUNTIME_CONFIG].current(session)
    return web.json_response(event_type_json(code, effective.event_type(code)))


def template_file_problem(renderer: Renderer, name: str) -> str | None:
    """Why `name` is not a template file under the renderer's directory, or None."""
    root = renderer.template_dir
    path = (root / name).resolve()
    if Path(name).is_absolute() or not path.is_relative_to(root) or not path.is_file():
        return f"template {name!r} does not exist under templates/"
    return None


@routes.put("/api/v1/event-types/{code}")
@admin_only
async def put_event_type(request: web.Request) -> web.Response:
    """Change some settings of one event type; template names must be existing files."""
    code = _event_code(request)
    changes = await json_body(request)
    given = _validate(EventTypeOverride, changes, "invalid event type settings")
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
            updated = await config.update_event_type(session, code, changes, actor=ACTOR)
    except ValidationError as exc:
        raise validation_error(exc, "invalid event type settings") from None
    logger.info("event type %s changed through the admin API: %s", code, ", ".join(changes))
    return web.json_response(event_type_json(code, updated))


@routes.post("/api/v1/event-types/{code}/preview")
@admin_only
async def preview_event_type(request: web.Request) -> web.Response:
    """Render the event's client and manager texts with this type's templates; stores nothing."""
    code = _event_code(request)
    payload = await json_body(request)
    # The path names the type; the body need not repeat it, nor invent an id or a time.
    payload["type"] = code
    payload.setdefault("event_id", "preview")
    payload.setdefault("occurred_at", datetime.now(UTC).isoformat())
    event = _validate(EventIn, payload, "the event does not match the contract")
    async with request.app[DB].sessions() as session:
        result = await preview.preview_event(
            session,
            config=request.app[RUNTIME_CONFIG],
            renderer=request.app[RENDERER],
            event=event,
        )
    return web.json_response(result.as_json())


@routes.post("/api/v1/sms/preview")
@admin_only
async def preview_sms(request: web.Request) -> web.Response:
    body = _validate(SmsPreviewIn, await json_body(request), "invalid preview request")
    return web.json_response(preview.preview_sms(body.text).figures_json())


# --------------------------------------------------------------------------- clients


async def _client_card(request: web.Request, client_id: str) -> dict[str, Any] | None:
    async with request.app[DB].sessions() as session:
        client = await directory.get_client(session, client_id)
        if client is None:
            return None
        overrides = await directory.list_client_type_settings(session, client_id)
        chats = await directory.active_chat_ids(session, client_id=client_id)
    return client_json(client, overrides, telegram_linked=bool(chats))


async def _template_problems(request: web.Request, body: ClientPutIn) -> list[dict[str, Any]]:
    """Compile and dry-render every own template of the body on its type's sample event
    (in the sandbox, off the event loop); one detail per refused template."""
    templates: dict[str, dict[str, str]] = {}
    for code, override in body.overrides.items():
        for field in ("template_client", "template_manager"):
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
    return web.json_response(card)


@routes.put("/api/v1/clients/{id}")
@admin_only
async def put_client(request: web.Request) -> web.Response:
    """Create or update a client card and its per-type overrides (201 when created)."""
    client_id = card_id(request, "client", creating=True)
    body = _validate(ClientPutIn, await json_body(request), "invalid client card")
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
    return web.json_response(card, status=201 if created else 200)


# The description of all of the above; not an admin route (it holds no data).
routes.get("/api/v1/openapi.json")(openapi.openapi_json)
