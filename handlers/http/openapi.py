"""`GET /api/v1/openapi.json`: the OpenAPI 3.1 description of every route the app serves.

Written by hand as a dict, with the request bodies taken from the pydantic models the views
validate with, so the two cannot drift apart. `tests/integration/test_openapi.py` checks
that the paths here are exactly the app's routes: a new route needs an entry here.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from dispatch.catalogue import EVENT_TYPES
from dispatch.config import EventTypeOverride, NotifySettings
from dispatch.intake.schemas import EventIn
from storage.statuses import ALL_STATUSES

Schema = dict[str, Any]

_REF = "#/components/schemas/{model}"
_JSON = "application/json"
_ADMIN: list[dict[str, list[str]]] = [{"bearerAuth": []}]
_PUBLIC: list[dict[str, list[str]]] = []


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Schema], *, required: list[str] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


def _content(schema: Schema) -> dict[str, Any]:
    return {_JSON: {"schema": schema}}


def _answer(description: str, schema: Schema) -> dict[str, Any]:
    return {"description": description, "content": _content(schema)}


def _error(name: str) -> Schema:
    return {"$ref": f"#/components/responses/{name}"}


class _Components:
    """Collects schemas, hoisting pydantic's `$defs` so every `$ref` resolves."""

    def __init__(self) -> None:
        self.schemas: dict[str, Schema] = {}

    def model(self, model: type[BaseModel], name: str | None = None) -> Schema:
        schema = model.model_json_schema(ref_template=_REF)
        for def_name, definition in schema.pop("$defs", {}).items():
            self.schemas.setdefault(def_name, definition)
        key = name or model.__name__
        self.schemas[key] = schema
        return _ref(key)

    def add(self, name: str, schema: Schema) -> Schema:
        self.schemas[name] = schema
        return _ref(name)


def _notification_schemas(c: _Components) -> None:
    text = {"type": "string"}
    when = _nullable({"type": "string", "format": "date-time"})
    c.add(
        "Notification",
        _object(
            {
                "id": {"type": "integer"},
                "event_id": _nullable({**text, "description": "The ERP's event_id."}),
                "event_type": {"type": "string", "enum": list(EVENT_TYPES)},
                "recipient": {"type": "string", "enum": ["client", "manager"]},
                "client_id": _nullable(text),
                "manager_id": _nullable(text),
                "channel": _nullable({"type": "string", "enum": ["telegram", "sms"]}),
                "phone": _nullable(text),
                "status": _ref("Status"),
                "text": _nullable(text),
                "encoding": _nullable({"type": "string", "enum": ["gsm7", "ucs2"]}),
                "units": _nullable({"type": "integer"}),
                "segments": _nullable({"type": "integer"}),
                "reason": _nullable(text),
                "attempts": {"type": "integer"},
                "provider": _nullable(text),
                "provider_message_id": _nullable(text),
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
                "sent_at": when,
                "delivered_at": when,
            }
        ),
    )
    c.add("Status", {"type": "string", "enum": list(ALL_STATUSES)})
    c.add(
        "HistoryEntry",
        _object(
            {
                "at": {"type": "string", "format": "date-time"},
                "from_status": _nullable(_ref("Status")),
                "to_status": _ref("Status"),
                "actor": {"type": "string", "examples": ["erp", "admin:api", "worker"]},
                "reason": _nullable(text),
                "channel": _nullable(text),
            }
        ),
    )
    c.add(
        "NotificationDetail",
        {
            "allOf": [
                _ref("Notification"),
                _object({"history": {"type": "array", "items": _ref("HistoryEntry")}}),
            ]
        },
    )
    c.add(
        "NotificationPage",
        _object(
            {
                "items": {"type": "array", "items": _ref("Notification")},
                "next_cursor": _nullable(
                    {"type": "string", "description": "Opaque; null on the last page."}
                ),
            }
        ),
    )


def _settings_schemas(c: _Components) -> None:
    notify = NotifySettings.model_json_schema(ref_template=_REF)
    properties = copy.deepcopy(notify["properties"])
    c.add(
        "SettingsPatch",
        {
            "type": "object",
            "description": "Any subset of the notify settings; unknown keys are refused.",
            "properties": properties,
            "additionalProperties": False,
        },
    )
    service = _object(
        {
            "name": {"type": "string"},
            "kind": {"type": "string", "enum": ["smsc", "smsru", "smsaero", "twilio", "http"]},
            "sender": _nullable({"type": "string"}),
        }
    )
    c.add(
        "Settings",
        {
            "type": "object",
            "description": "The effective notify settings (config file overlaid with what "
            "this API stored) and the SMS services, read-only and without credentials.",
            "properties": {
                **copy.deepcopy(properties),
                "sms_services": {"type": "array", "items": service, "readOnly": True},
            },
            "required": [*properties, "sms_services"],
        },
    )
    flags = {
        name: {"type": "boolean"}
        for name in (
            "confirm_before_send",
            "send_to_client",
            "send_to_manager",
            "tracked_by_manager",
            "default_for_new_clients",
        )
    }
    c.add(
        "EventType",
        _object(
            {
                "code": {"type": "string", "enum": list(EVENT_TYPES)},
                "title": {"type": "string"},
                "description": {"type": "string"},
                **flags,
                "template_client": {
                    "type": "string",
                    "description": "A template file under templates/.",
                },
                "template_manager": {"type": "string"},
            }
        ),
    )
    c.add("EventTypeList", _object({"items": {"type": "array", "items": _ref("EventType")}}))
    c.model(EventTypeOverride, "EventTypePatch")


def _client_schemas(c: _Components) -> None:
    from handlers.http.admin import ClientPutIn  # the views import this module to serve it

    override = _object(
        {
            "send": _nullable({"type": "boolean"}),
            "template_client": _nullable({"type": "string"}),
            "template_manager": _nullable({"type": "string"}),
        }
    )
    text = {"type": "string"}
    c.add(
        "ClientCard",
        _object(
            {
                "id": text,
                "name": text,
                "phone": _nullable({**text, "description": "E.164"}),
                "manager_id": _nullable(text),
                "category": _nullable(text),
                "blocked": {"type": "boolean"},
                "telegram_linked": {"type": "boolean"},
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
                "overrides": {
                    "type": "object",
                    "description": "Per event type code.",
                    "additionalProperties": override,
                },
            }
        ),
    )
    c.model(ClientPutIn, "ClientPut")


def _manager_schemas(c: _Components) -> None:
    """Managers and unmatched contacts (`handlers/http/managers.py`)."""
    from handlers.http.managers import ManagerPutIn  # the views import this module to serve it

    text = {"type": "string"}
    when = {"type": "string", "format": "date-time"}
    chat = _object(
        {
            "chat_id": {"type": "integer"},
            "user_id": _nullable({"type": "integer"}),
            "stopped": {"type": "boolean", "description": "The user sent /stop."},
            "blocked": {"type": "boolean", "description": "The user blocked the bot."},
            "linked_at": when,
            "updated_at": when,
        }
    )
    c.add(
        "ManagerCard",
        _object(
            {
                "id": text,
                "name": text,
                "phone": _nullable({**text, "description": "E.164"}),
                "email": _nullable(text),
                "is_admin": {
                    "type": "boolean",
                    "description": "Sees every client in the bot, gets the low-balance alerts "
                    "and the chat messages of clients without a manager.",
                },
                "telegram_linked": {
                    "type": "boolean",
                    "description": "At least one chat is neither stopped nor blocked.",
                },
                "telegram_chats": {"type": "array", "items": chat},
                "created_at": when,
                "updated_at": when,
            }
        ),
    )
    c.model(ManagerPutIn, "ManagerPut")
    c.add(
        "UnmatchedContact",
        _object(
            {
                "id": {"type": "integer"},
                "chat_id": {"type": "integer"},
                "user_id": _nullable({"type": "integer"}),
                "phone": {**text, "description": "E.164, as shared."},
                "name": _nullable({**text, "description": "The name on the Telegram contact."}),
                "created_at": when,
            }
        ),
    )
    c.add(
        "UnmatchedContactPage",
        _object(
            {
                "items": {"type": "array", "items": _ref("UnmatchedContact")},
                "next_cursor": _nullable(
                    {"type": "string", "description": "Opaque; null on the last page."}
                ),
            }
        ),
    )


def _event_schemas(c: _Components) -> None:
    from handlers.http.admin import NoteIn, SmsPreviewIn, StatusChangeIn

    c.model(EventIn, "Event")
    preview_in = copy.deepcopy(c.schemas["Event"])
    preview_in["required"] = [
        name for name in preview_in["required"] if name not in {"type", "event_id", "occurred_at"}
    ]
    preview_in["description"] = (
        "An event as the webhook takes it; the path's code replaces `type`, and "
        "`event_id` / `occurred_at` may be left out."
    )
    c.add("EventPreviewRequest", preview_in)
    c.add(
        "IngestResult",
        _object(
            {
                "event_id": {"type": "string"},
                "duplicate": {"type": "boolean"},
                "notifications": {
                    "type": "array",
                    "items": _object(
                        {
                            "id": {"type": "integer"},
                            "recipient": {"type": "string", "enum": ["client", "manager"]},
                            "channel": _nullable({"type": "string", "enum": ["telegram", "sms"]}),
                            "status": _ref("Status"),
                        }
                    ),
                },
            }
        ),
    )
    figures: dict[str, Schema] = {
        "encoding": {"type": "string", "enum": ["gsm7", "ucs2"]},
        "units": {
            "type": "integer",
            "description": "Septets (GSM-7) or UTF-16 code units (UCS-2).",
        },
        "segments": {"type": "integer"},
        "parts": {"type": "array", "items": {"type": "string"}},
    }
    c.add("SmsPreview", _object(figures))
    c.model(SmsPreviewIn, "SmsPreviewRequest")
    c.add(
        "TextPreview",
        _object(
            {
                "text": _nullable({"type": "string"}),
                **{name: _nullable(schema) for name, schema in figures.items()},
                "error": _nullable(
                    {"type": "string", "description": "Why the template did not render."}
                ),
            }
        ),
    )
    c.add(
        "EventPreview",
        _object({"client": _ref("TextPreview"), "manager": _ref("TextPreview")}),
    )
    c.model(StatusChangeIn, "StatusChange")
    c.model(NoteIn, "Note")


def _components() -> dict[str, Any]:
    c = _Components()
    c.add(
        "Error",
        _object(
            {
                "error": _object(
                    {
                        "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                        "message": {"type": "string"},
                        "details": {"type": "array", "items": {}},
                    }
                )
            }
        ),
    )
    _notification_schemas(c)
    _settings_schemas(c)
    _client_schemas(c)
    _manager_schemas(c)
    _event_schemas(c)
    c.add("Health", _object({"status": {"type": "string", "const": "ok"}}))
    c.add(
        "Ready",
        _object(
            {
                "status": {"type": "string", "const": "ready"},
                "database": {"type": "string", "enum": ["postgresql", "sqlite"]},
            }
        ),
    )
    error = _ref("Error")
    responses = {
        "InvalidJson": _answer("The body is not valid JSON (`invalid_json`).", error),
        "Unauthorized": _answer(
            "Missing or wrong credentials (`unauthorized` / `invalid_signature`).", error
        ),
        "CrossSite": _answer(
            "A cross-site browser request (`forbidden`): `Sec-Fetch-Site: cross-site` or "
            "`same-site`, or an `Origin` other than this server's own host, the "
            "`http.public_url` host or one of `http.allowed_hosts`.",
            error,
        ),
        "MisdirectedRequest": _answer(
            "`Host` is not a name of this server (`misdirected_request`): only loopback "
            "names, the bind address, the `http.public_url` host and `http.allowed_hosts` "
            "are served (DNS rebinding). A missing or malformed `Host` is a 400.",
            error,
        ),
        "RequestTimeout": _answer(
            "The body did not arrive within `http.body_timeout_seconds` "
            "(`request_timeout`); the connection is closed.",
            error,
        ),
        "UnsupportedMediaType": _answer(
            "A body that is not `Content-Type: application/json` UTF-8 "
            "(`unsupported_media_type`).",
            error,
        ),
        "NotFound": _answer("No such resource (`not_found`).", error),
        "Conflict": _answer(
            "The notification's status (or the notify mode) does not allow this "
            "(`conflict`); the message names the current status.",
            error,
        ),
        "TooLarge": _answer("The body is too large (`payload_too_large`).", error),
        "Unprocessable": _answer(
            "Schema or value errors (`validation_error`, with `details`).", error
        ),
        "Unavailable": _answer(
            "The database is unavailable (`storage_unavailable`); retry later.", error
        ),
    }
    return {
        "schemas": dict(sorted(c.schemas.items())),
        "responses": responses,
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "VESTNIK_ADMIN__TOKEN (required in live mode, with "
                "http.public_url or a non-loopback http.host). Without a configured token the "
                "admin API answers direct loopback requests only (none carrying Forwarded, "
                "X-Forwarded-*, X-Real-IP or Via).",
            },
        },
    }


# --------------------------------------------------------------------------- operations


def _path_param(name: str, description: str, schema: Schema | None = None) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or {"type": "string"},
    }


_NOTIFICATION_ID = _path_param("id", "Notification id.", {"type": "integer", "minimum": 1})
_CODE = _path_param(
    "code", "Event type code (CONTRACT §3).", {"type": "string", "enum": list(EVENT_TYPES)}
)
_CLIENT_ID = _path_param("id", "The ERP's client id.", {"type": "string", "maxLength": 64})


def _admin_op(
    operation_id: str,
    summary: str,
    ok: dict[str, Any],
    *,
    tag: str,
    errors: tuple[str, ...] = (),
    parameters: list[Schema] | None = None,
    body: Schema | None = None,
    body_required: bool = True,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    responses: dict[str, Any] = {**ok}
    if body is not None:
        responses["400"] = _error("InvalidJson")
        responses["408"] = _error("RequestTimeout")
        responses["415"] = _error("UnsupportedMediaType")
    responses["401"] = _error("Unauthorized")
    # The request guard (handlers/common/guard.py) answers these on every route; listed on the
    # admin API, the one browsers are a danger to.
    responses["403"] = _error("CrossSite")
    responses["421"] = _error("MisdirectedRequest")
    codes = {"404": "NotFound", "409": "Conflict", "422": "Unprocessable"}
    for code in errors:
        responses[code] = _error(codes[code])
    responses["503"] = _error("Unavailable")
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "security": _ADMIN,
        "responses": dict(sorted(responses.items())),
    }
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"required": body_required, "content": _content(body)}
    operation.update(extra or {})
    return operation


def _journal_parameters() -> list[Schema]:
    def query(name: str, description: str, schema: Schema) -> Schema:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "description": description,
            "schema": schema,
        }

    return [
        query("status", "Only this status.", _ref("Status")),
        query("type", "Only this event type.", {"type": "string", "enum": list(EVENT_TYPES)}),
        query("client_id", "Only this client.", {"type": "string", "maxLength": 64}),
        query(
            "since",
            "Created at or after this ISO 8601 time (UTC when no zone is given).",
            {"type": "string", "format": "date-time"},
        ),
        query(
            "limit", "Page size.", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}
        ),
        query("cursor", "`next_cursor` of the previous page.", {"type": "string"}),
    ]


def _action(operation_id: str, summary: str, body: Schema, *, required: bool) -> dict[str, Any]:
    return {
        "post": _admin_op(
            operation_id,
            summary,
            {"200": _answer("The updated notification.", _ref("NotificationDetail"))},
            tag="journal",
            errors=("404", "409", "422"),
            parameters=[_NOTIFICATION_ID],
            body=body,
            body_required=required,
        )
    }


def _journal_paths() -> dict[str, Any]:
    return {
        "/api/v1/notifications": {
            "get": _admin_op(
                "listNotifications",
                "The notification journal, newest first, with cursor pagination.",
                {"200": _answer("One page.", _ref("NotificationPage"))},
                tag="journal",
                errors=("422",),
                parameters=_journal_parameters(),
            )
        },
        "/api/v1/notifications/{id}": {
            "get": _admin_op(
                "getNotification",
                "One notification with its status history.",
                {"200": _answer("The notification.", _ref("NotificationDetail"))},
                tag="journal",
                errors=("404",),
                parameters=[_NOTIFICATION_ID],
            )
        },
        "/api/v1/notifications/{id}/status": _action(
            "setNotificationStatus",
            "Mark as sent manually or cancelled (from the statuses that allow it).",
            _ref("StatusChange"),
            required=True,
        ),
        "/api/v1/notifications/{id}/confirm": _action(
            "confirmNotification",
            "Confirm a notification awaiting confirmation: pending (live) or test (test mode).",
            _ref("Note"),
            required=False,
        ),
        "/api/v1/notifications/{id}/cancel": _action(
            "cancelNotification",
            "Cancel a notification awaiting confirmation.",
            _ref("Note"),
            required=False,
        ),
        "/api/v1/notifications/{id}/resend": _action(
            "resendNotification",
            "Queue a finished notification again (live mode only; 409 in test and off).",
            _ref("Note"),
            required=False,
        ),
    }


def _settings_paths() -> dict[str, Any]:
    return {
        "/api/v1/settings": {
            "get": _admin_op(
                "getSettings",
                "The effective notify settings and the SMS services.",
                {"200": _answer("The settings.", _ref("Settings"))},
                tag="settings",
            ),
            "put": _admin_op(
                "updateSettings",
                "Change some notify settings. 422 `settings_rejected` when the result "
                "would be misconfigured.",
                {"200": _answer("The settings after the change.", _ref("Settings"))},
                tag="settings",
                errors=("422",),
                body=_ref("SettingsPatch"),
            ),
        },
        "/api/v1/event-types": {
            "get": _admin_op(
                "listEventTypes",
                "All 16 event types with their effective settings.",
                {"200": _answer("The event types.", _ref("EventTypeList"))},
                tag="settings",
            )
        },
        "/api/v1/event-types/{code}": {
            "get": _admin_op(
                "getEventType",
                "One event type with its effective settings.",
                {"200": _answer("The event type.", _ref("EventType"))},
                tag="settings",
                errors=("404",),
                parameters=[_CODE],
            ),
            "put": _admin_op(
                "updateEventType",
                "Change some settings of an event type; templates must be existing files.",
                {"200": _answer("The event type after the change.", _ref("EventType"))},
                tag="settings",
                errors=("404", "422"),
                parameters=[_CODE],
                body=_ref("EventTypePatch"),
            ),
        },
        "/api/v1/event-types/{code}/preview": {
            "post": _admin_op(
                "previewEventType",
                "Render the client and manager texts of an event; nothing is stored. A "
                "template error is reported in that text's `error`.",
                {"200": _answer("The rendered texts.", _ref("EventPreview"))},
                tag="previews",
                errors=("404", "422"),
                parameters=[_CODE],
                body=_ref("EventPreviewRequest"),
            )
        },
        "/api/v1/sms/preview": {
            "post": _admin_op(
                "previewSms",
                "Encoding, size and parts of a text sent as SMS.",
                {"200": _answer("The SMS figures.", _ref("SmsPreview"))},
                tag="previews",
                errors=("422",),
                body=_ref("SmsPreviewRequest"),
            )
        },
        "/api/v1/clients/{id}": {
            "get": _admin_op(
                "getClient",
                "A client card with its per-type overrides.",
                {"200": _answer("The client.", _ref("ClientCard"))},
                tag="clients",
                errors=("404",),
                parameters=[_CLIENT_ID],
            ),
            "put": _admin_op(
                "putClient",
                "Create or update a client card and its per-type overrides; own templates "
                "are compiled and rendered in the sandbox on the type's sample event first "
                "(422 naming the type, recipient and line when one fails or exceeds the "
                "render budget; a value the sample lacks is not a failure).",
                {
                    "200": _answer("The client after the change.", _ref("ClientCard")),
                    "201": _answer("The client, created.", _ref("ClientCard")),
                },
                tag="clients",
                errors=("422",),
                parameters=[_CLIENT_ID],
                body=_ref("ClientPut"),
            ),
        },
    }


def _manager_paths() -> dict[str, Any]:
    manager_id = _path_param("id", "The ERP's manager id.", {"type": "string", "maxLength": 64})
    page = [
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "description": "Page size.",
            "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
        },
        {
            "name": "cursor",
            "in": "query",
            "required": False,
            "description": "`next_cursor` of the previous page.",
            "schema": {"type": "string"},
        },
    ]
    return {
        "/api/v1/managers/{id}": {
            "get": _admin_op(
                "getManager",
                "A manager card with its linked Telegram chats.",
                {"200": _answer("The manager.", _ref("ManagerCard"))},
                tag="managers",
                errors=("404",),
                parameters=[manager_id],
            ),
            "put": _admin_op(
                "putManager",
                "Create or update a manager card; the fields given are set, the others kept. "
                "`is_admin` is set only here: the ERP's events never change it.",
                {
                    "200": _answer("The manager after the change.", _ref("ManagerCard")),
                    "201": _answer("The manager, created.", _ref("ManagerCard")),
                },
                tag="managers",
                errors=("422",),
                parameters=[manager_id],
                body=_ref("ManagerPut"),
            ),
        },
        "/api/v1/unmatched-contacts": {
            "get": _admin_op(
                "listUnmatchedContacts",
                "Phones shared with the bot that matched no client or manager, newest first, "
                "with cursor pagination.",
                {"200": _answer("One page.", _ref("UnmatchedContactPage"))},
                tag="managers",
                errors=("422",),
                parameters=page,
            )
        },
    }


def _delivery_paths() -> dict[str, Any]:
    provider_failed = _answer(
        "The SMS provider refused or failed (`provider_error`).", _ref("Error")
    )
    balance = _object(
        {
            "service": {"type": "string"},
            "kind": {"type": "string"},
            "balance": {"type": "string", "description": "Decimal, as a string."},
            "currency": _nullable({"type": "string"}),
            "threshold": {"type": "string"},
            "below_threshold": {"type": "boolean"},
            "state": {
                "type": "string",
                "enum": ["off", "below", "ok"],
                "description": "off: threshold 0; below: under the threshold; ok: at or above.",
            },
            "alert_active": _nullable(
                {"type": "boolean", "description": "Whether the low-balance alert is raised."}
            ),
        },
        required=["service", "kind", "balance", "threshold", "below_threshold"],
    )
    test_sms_result = _object(
        {
            "notification_id": {"type": "integer"},
            "service": {"type": "string"},
            "status": {"type": "string", "enum": ["sent", "failed"]},
            "reason": {"type": "string"},
            "error": _nullable({"type": "string"}),
            "provider_message_id": _nullable({"type": "string"}),
            "encoding": {"type": "string", "enum": ["gsm7", "ucs2"]},
            "segments": {"type": "integer"},
        },
        required=["notification_id", "service", "status", "reason"],
    )
    service_param = {
        "name": "service",
        "in": "query",
        "required": False,
        "description": "A name from [[sms_services]]; default: the one notifications use.",
        "schema": {"type": "string"},
    }
    return {
        "/api/v1/balance": {
            "get": _admin_op(
                "getBalance",
                "The SMS balance of the provider, with the low-balance threshold state.",
                {"200": _answer("The balance.", balance), "502": provider_failed},
                tag="sms",
                errors=("404", "409"),
                parameters=[service_param],
            )
        },
        "/api/v1/test-sms": {
            "post": _admin_op(
                "postTestSms",
                "Send the test SMS now (it costs one SMS); journaled as `test_sms`. Only to "
                "numbers of `test_sms.countries` (else 422 with the allowed ones in "
                "`details`), at most `test_sms.daily_limit` a day with the bot's `/testsms` "
                "(else 429); `daily_limit = 0` turns it off (409 `test_sms_disabled`).",
                {
                    "200": _answer("Sent.", test_sms_result),
                    "429": {
                        **_answer(
                            "Today's test SMS are used up (`too_many_requests`); "
                            "`details[0].resets_at` is the next 00:00 UTC.",
                            _ref("Error"),
                        ),
                        "headers": {
                            "Retry-After": {
                                "description": "Seconds until the count restarts.",
                                "schema": {"type": "integer"},
                            }
                        },
                    },
                    "502": _answer("The provider did not take it.", test_sms_result),
                },
                tag="sms",
                errors=("404", "409", "422"),
                body=_object(
                    {"phone": {"type": "string"}, "service": _nullable({"type": "string"})},
                    required=["phone"],
                ),
            )
        },
        "/api/v1/providers/{name}/status": {
            "post": {
                "operationId": "providerStatus",
                "summary": "Delivery receipts from an SMS provider, in that provider's own "
                "callback format and authentication (Twilio's signature, SMS.ru's hash, "
                "`?secret=` for SMSC and SMS Aero, the bearer token of the `http` kind); a "
                "service with nothing to authenticate them with answers 401 to all. "
                "Unknown message ids are answered 2xx. At most 500 receipts per callback "
                "(else 413); a message id with control characters or over 128 characters "
                "is a 422; nothing of a refused callback is applied.",
                "tags": ["sms"],
                "security": _PUBLIC,
                "parameters": [_path_param("name", "A name from [[sms_services]].")],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                        "application/json": {"schema": {"type": "object"}},
                    },
                },
                "responses": {
                    "200": {
                        "description": "Accepted; the body is what the provider expects "
                        "(`100` for SMS.ru, `OK` otherwise).",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "400": _error("InvalidJson"),
                    "401": _error("Unauthorized"),
                    "404": _error("NotFound"),
                    "408": _error("RequestTimeout"),
                    "413": _error("TooLarge"),
                    "422": _error("Unprocessable"),
                    "503": _error("Unavailable"),
                },
            }
        },
    }


def _public_paths() -> dict[str, Any]:
    accepted = _ref("IngestResult")
    return {
        "/api/v1/events": {
            "post": {
                "operationId": "postEvent",
                "summary": "The ERP webhook: one event, at most 256 KiB, idempotent by event_id.",
                "tags": ["erp"],
                "security": _PUBLIC,
                "parameters": [
                    {
                        "name": "X-Vestnik-Signature",
                        "in": "header",
                        "required": False,
                        "description": "Required unless no webhook secret is configured "
                        "(then only direct loopback callers, not relayed by a proxy, may "
                        "post). `t` is 1-12 digits, each `v1` exactly 64 hex digits. Older "
                        "or newer than 300 s: 401.",
                        "schema": {
                            "type": "string",
                            "pattern": "^t=[0-9]{1,12},v1=[0-9a-fA-F]{64}",
                        },
                    }
                ],
                "requestBody": {"required": True, "content": _content(_ref("Event"))},
                "responses": {
                    "200": _answer(
                        "A repeated event_id: the first call's notifications, "
                        "`duplicate: true`, nothing created.",
                        accepted,
                    ),
                    "202": _answer("Stored with its notifications.", accepted),
                    "400": _error("InvalidJson"),
                    "401": _error("Unauthorized"),
                    "403": _error("CrossSite"),
                    "408": _error("RequestTimeout"),
                    "413": _error("TooLarge"),
                    "415": _answer(
                        "Not `application/json` UTF-8 (`unsupported_media_type`).", _ref("Error")
                    ),
                    "421": _error("MisdirectedRequest"),
                    "422": _error("Unprocessable"),
                    "503": _error("Unavailable"),
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "The process is up.",
                "tags": ["operations"],
                "security": _PUBLIC,
                "responses": {"200": _answer("Up.", _ref("Health"))},
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics: events, notifications by status and channel, "
                "delivery latency, queue depth and age, provider errors, SMS balance, "
                "Telegram 429s. Public unless `metrics.token` is set; then it needs "
                "`Authorization: Bearer <metrics.token>`.",
                "tags": ["operations"],
                "security": _PUBLIC,
                "responses": {
                    "200": {
                        "description": "Prometheus text format 0.0.4.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": _error("Unauthorized"),
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "The database is reachable.",
                "tags": ["operations"],
                "security": _PUBLIC,
                "responses": {
                    "200": _answer("Ready.", _ref("Ready")),
                    "503": _error("Unavailable"),
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "tags": ["operations"],
                "security": _PUBLIC,
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1.",
                        "content": _content({"type": "object"}),
                    }
                },
            }
        },
    }


def _telegram_paths() -> dict[str, Any]:
    """The deep links of the Telegram bot (`handlers/http/telegram_link.py`)."""
    link: dict[str, Any] = {
        "type": "object",
        "properties": {
            "url": {
                "type": "string",
                "format": "uri",
                "examples": ["https://t.me/vestnik_bot?start=Zk3…"],
            },
            "token": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
            "expires_at": {"type": "string", "format": "date-time"},
        },
        "required": ["url", "token", "expires_at"],
    }
    error = _ref("Error")

    def operation(operation_id: str, who: str, key: str) -> dict[str, Any]:
        body = {
            **link,
            "properties": {key: {"type": "string"}, **link["properties"]},
            "required": [key, *link["required"]],
        }
        get = _admin_op(
            operation_id,
            f"A one-time deep link that subscribes the {who}'s Telegram chat: the first "
            "Telegram user who opens it is bound to it; it expires after 7 days. Every call "
            "makes a new token.",
            {"200": _answer("The deep link.", body)},
            tag="clients",
            errors=("404",),
            parameters=[
                _path_param("id", f"The ERP's {who} id.", {"type": "string", "maxLength": 64})
            ],
        )
        get["responses"]["409"] = _answer(
            "No Telegram bot is configured (`telegram_not_configured`).", error
        )
        get["responses"]["502"] = _answer(
            "The Telegram Bot API did not answer getMe (`telegram_unavailable`).", error
        )
        get["responses"] = dict(sorted(get["responses"].items()))
        return {"get": get}

    return {
        "/api/v1/clients/{id}/telegram-link": operation(
            "getClientTelegramLink", "client", "client_id"
        ),
        "/api/v1/managers/{id}/telegram-link": operation(
            "getManagerTelegramLink", "manager", "manager_id"
        ),
    }


@functools.cache
def _job_paths() -> dict[str, Any]:
    run = _object(
        {
            "job": {"type": "string"},
            "result": _nullable({"type": "object", "additionalProperties": True}),
            "error": _nullable({"type": "string"}),
        },
        required=["job", "result", "error"],
    )
    return {
        "/api/v1/jobs/{name}/run": {
            "post": _admin_op(
                "runJob",
                "Run a scheduled job now, outside its schedule, in the server that answers "
                "(`vestnik run-job NAME`). A job that failed is answered 200 with its `error`.",
                {"200": _answer("What the job reported.", run)},
                tag="operations",
                errors=("404", "409"),
                parameters=[
                    _path_param(
                        "name",
                        "balance, receipts, email, retention or expire_confirmations. "
                        "409 when the scheduler does not run in this process.",
                    )
                ],
            )
        }
    }


def document() -> dict[str, Any]:
    """The OpenAPI document (built once; callers must not change it)."""
    paths = {
        **_public_paths(),
        **_journal_paths(),
        **_settings_paths(),
        **_manager_paths(),
        **_delivery_paths(),
        **_telegram_paths(),
        **_job_paths(),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Vestnik",
            "version": "1",
            "description": "Notifications from the ERP to clients and managers by Telegram "
            "and SMS: the ERP webhook and the admin API (CONTRACT.md §2, §6). On every "
            "route a `Host` that is not this server's is a 421 and a cross-site browser "
            "request (`Origin`, `Sec-Fetch-Site`) a 403; admin bodies must be "
            "`application/json` (else 415).",
        },
        "tags": [
            {"name": name}
            for name in (
                "erp",
                "journal",
                "settings",
                "clients",
                "managers",
                "previews",
                "sms",
                "operations",
            )
        ],
        "paths": dict(sorted(paths.items())),
        "components": _components(),
    }


async def openapi_json(_request: web.Request) -> web.Response:
    """Serve the document; it holds no data, so it needs no token."""
    return web.json_response(document())
