"""The document's components: every schema generated from the pydantic models the routes
name, the shared error answers and the security scheme."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from dispatch.config import EventTypeOverride, NotifySettings
from dispatch.intake.schemas import EventIn
from handlers.common.answers import Error
from handlers.http import clients, managers, notifications, previews, sms_admin
from handlers.http.openapi.spec import JSON, Schema

REF = "#/components/schemas/{model}"

# Schema names that are not the class's own: request models are named after what they
# carry (the `In` suffix is the code's convention, not the API's).
SCHEMA_NAMES: dict[type[BaseModel], str] = {
    EventIn: "Event",
    EventTypeOverride: "EventTypePatch",
    clients.ClientPutIn: "ClientPut",
    managers.ManagerPutIn: "ManagerPut",
    notifications.StatusChangeIn: "StatusChange",
    notifications.NoteIn: "Note",
    previews.SmsPreviewIn: "SmsPreviewRequest",
    sms_admin.TestSmsIn: "TestSmsRequest",
}

_ERROR_ANSWERS = {
    "InvalidJson": "The body is not valid JSON (`invalid_json`).",
    "Unauthorized": "Missing or wrong credentials (`unauthorized` / `invalid_signature`).",
    "CrossSite": "A cross-site browser request (`forbidden`): `Sec-Fetch-Site: cross-site` "
    "or `same-site`, or an `Origin` other than this server's own host, the "
    "`http.public_url` host or one of `http.allowed_hosts`.",
    "MisdirectedRequest": "`Host` is not a name of this server (`misdirected_request`): "
    "only loopback names, the bind address, the `http.public_url` host and "
    "`http.allowed_hosts` are served (DNS rebinding). A missing or malformed `Host` is a 400.",
    "RequestTimeout": "The body did not arrive within `http.body_timeout_seconds` "
    "(`request_timeout`); the connection is closed.",
    "UnsupportedMediaType": "A body that is not `Content-Type: application/json` UTF-8 "
    "(`unsupported_media_type`).",
    "NotFound": "No such resource (`not_found`).",
    "Conflict": "The notification's status (or the notify mode) does not allow this "
    "(`conflict`); the message names the current status.",
    "TooLarge": "The body is too large (`payload_too_large`).",
    "Unprocessable": "Schema or value errors (`validation_error`, with `details`).",
    "Unavailable": "The database is unavailable (`storage_unavailable`); retry later.",
}

_BEARER = (
    "VESTNIK_ADMIN__TOKEN (required in live mode, with http.public_url or a non-loopback "
    "http.host). Without a configured token the admin API answers direct loopback requests "
    "only (none carrying Forwarded, X-Forwarded-*, X-Real-IP or Via)."
)


def schema_name(model: type[BaseModel]) -> str:
    return SCHEMA_NAMES.get(model, model.__name__)


def ref(name: str) -> Schema:
    return {"$ref": REF.format(model=name)}


def _renamed(node: Any, names: dict[str, str]) -> Any:
    """`node` with every `$ref` to a class name pointing at its schema name."""
    if isinstance(node, dict):
        out = {key: _renamed(value, names) for key, value in node.items()}
        target = out.get("$ref")
        if isinstance(target, str) and target.startswith(REF.format(model="")):
            name = target.removeprefix(REF.format(model=""))
            out["$ref"] = REF.format(model=names.get(name, name))
        return out
    if isinstance(node, list):
        return [_renamed(item, names) for item in node]
    return node


def _settings_patch(notify: Schema) -> Schema:
    """Any subset of the notify settings: what `PUT /api/v1/settings` takes."""
    return {
        "type": "object",
        "description": "Any subset of the notify settings; unknown keys are refused.",
        "properties": copy.deepcopy(notify["properties"]),
        "additionalProperties": False,
    }


def _event_preview_request(event: Schema) -> Schema:
    """An event as the webhook takes it, less what the preview fills in."""
    schema = copy.deepcopy(event)
    optional = set(previews.EVENT_PREVIEW_OPTIONAL)
    schema["required"] = [name for name in schema["required"] if name not in optional]
    schema["description"] = (
        "An event as the webhook takes it; the path's code replaces `type`, and "
        "`event_id` / `occurred_at` may be left out."
    )
    return schema


def schemas(
    requests: Iterable[type[BaseModel]], answers: Iterable[type[BaseModel]]
) -> dict[str, Schema]:
    """Every schema the routes refer to, by name, `$ref`s resolving inside the document."""
    modes: dict[type[BaseModel], Literal["validation", "serialization"]] = {
        NotifySettings: "validation",  # the source of SettingsPatch
        EventIn: "validation",  # and of EventPreviewRequest
        Error: "serialization",
    }
    modes.update(dict.fromkeys(requests, "validation"))
    for model in answers:
        modes.setdefault(model, "serialization")
    _, top = models_json_schema(list(modes.items()), ref_template=REF)
    names = {model.__name__: schema_name(model) for model in modes}
    found: dict[str, Schema] = {
        names.get(key, key): _renamed(value, names) for key, value in top["$defs"].items()
    }
    # The error body is one object everywhere; inlined, as clients have always read it.
    found["Error"]["properties"]["error"] = found.pop("ErrorBody")
    found["SettingsPatch"] = _settings_patch(found.pop("NotifySettings"))
    found["EventPreviewRequest"] = _event_preview_request(found["Event"])
    return dict(sorted(found.items()))


def components(schemas_by_name: dict[str, Schema]) -> dict[str, Any]:
    error = {JSON: {"schema": ref("Error")}}
    return {
        "schemas": schemas_by_name,
        "responses": {
            name: {"description": description, "content": error}
            for name, description in _ERROR_ANSWERS.items()
        },
        "securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer", "description": _BEARER}
        },
    }
