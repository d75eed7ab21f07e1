"""The directory «Сервисы отправки сообщений» in the admin API (CONTRACT §8).

`GET /api/v1/sms-services`, `GET|PUT|DELETE /api/v1/sms-services/{name}` and
`POST /api/v1/sms-services/{name}/check`. The config file's `[[sms_services]]` are the
directory's lower layer and what is stored here wins (`dispatch/delivery/channels/sms/
directory.py`); every replica follows a change within the runtime config's few seconds,
this one at once. Secrets are write-only: answered as `***`, kept when a PUT leaves them
out or sends `***`.
"""

from __future__ import annotations

import logging
from typing import Literal

from aiohttp import web
from pydantic import ConfigDict, Field, ValidationError

from dispatch.config import SmsKind, SmsServiceConfig
from dispatch.delivery.channels.sms.directory import (
    DirectoryEntry,
    Origin,
    ServiceInUse,
    ServiceRejected,
    in_use_name,
    masked,
)
from dispatch.delivery.channels.sms.registry import callbacks_refused
from dispatch.ops.sms_check import check_service
from dispatch.runtime_config import EffectiveConfig
from handlers.common.answers import Answer, answer, json_response
from handlers.common.auth import ADMIN_ACTOR, admin_only
from handlers.common.errors import ApiError, validation_error
from handlers.common.keys import DB, HTTP_CONTEXT, RUNTIME_CONFIG, SMS_PROVIDERS
from handlers.common.parsing import json_body

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

Masked = Literal["***"] | None


class SmsServicePut(SmsServiceConfig):
    """`PUT /api/v1/sms-services/{name}`: the whole entry, as a `[[sms_services]]` table
    of the config file, validated by the same model, plus what each kind's API needs
    (SMSC: login and password or api_key; SMS.ru: api_key; SMS Aero: email and api_key;
    Twilio: account_sid, token and sender; `http`: base_url) and an http(s) `base_url`.
    The secrets `password`, `api_key` and `token` are write-only: left out or sent as
    `***`, the one in effect is kept; null clears it."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str | None = Field(default=None, min_length=1, max_length=64)  # type: ignore[assignment]
    """Optional: the name is the path's; a different one is a 422."""


class SmsServiceEntry(SmsServiceConfig):
    """One service of the directory; its secrets only say whether they are set."""

    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        json_schema_serialization_defaults_required=True,
    )

    password: Masked = None
    """`***` when set; never the value."""
    api_key: Masked = None
    """`***` when set; never the value."""
    token: Masked = None
    """`***` when set; never the value."""
    origin: Origin
    """`file`: the config file's entry, untouched; `stored`: created or changed here."""
    in_use: bool
    """Notifications go by this service (`notify.sms_service`, else the first listed)."""
    callbacks_refused: str | None
    """Null when its delivery callbacks can be authenticated; else what to configure."""


class SmsServiceDirectory(Answer):
    """The directory in its order (the first is used when `notify.sms_service` is null)."""

    services: list[SmsServiceEntry]
    in_use: str | None
    """The service notifications go by; null when there is none."""


class SmsServiceCheck(Answer):
    """The service's balance read now, and what works."""

    service: str
    kind: SmsKind
    ok: bool
    """The provider answered the balance request: credentials and URL work."""
    balance: str | None
    """Decimal, as a string; null when it could not be read."""
    currency: str | None
    error: str | None
    """Why the balance could not be read."""
    error_kind: str | None
    """`auth`, `no_money`, `transient`, `config`, … (null when ok)."""
    callbacks_refused: str | None
    """Null when its delivery callbacks can be authenticated; else what to configure."""
    detail: str
    """One line, as `vestnik check-config` prints it."""


def _entry(request: web.Request, entry: DirectoryEntry, in_use: str | None) -> SmsServiceEntry:
    public_url = request.app[HTTP_CONTEXT].public_url
    return SmsServiceEntry.model_validate(
        {
            **masked(entry.config),
            "origin": entry.origin,
            "in_use": entry.config.name == in_use,
            "callbacks_refused": callbacks_refused(entry.config, public_url),
        }
    )


async def _fresh(request: web.Request) -> EffectiveConfig:
    """The effective config read now; this replica's providers follow it at once."""
    async with request.app[DB].sessions() as session:
        return await request.app[RUNTIME_CONFIG].fresh(session)


def _directory(request: web.Request, effective: EffectiveConfig) -> web.Response:
    in_use = in_use_name(effective.sms_directory, effective.notify.sms_service)
    services = [_entry(request, entry, in_use) for entry in effective.sms_directory]
    return answer(SmsServiceDirectory, {"services": services, "in_use": in_use})


def _not_found(name: str) -> ApiError:
    return ApiError(404, "not_found", f"no SMS service named {name!r} (GET /api/v1/sms-services)")


@routes.get("/api/v1/sms-services")
@admin_only
async def list_services(request: web.Request) -> web.Response:
    return _directory(request, await _fresh(request))


@routes.get("/api/v1/sms-services/{name}")
@admin_only
async def get_service(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    effective = await _fresh(request)
    found = next((e for e in effective.sms_directory if e.config.name == name), None)
    if found is None:
        raise _not_found(name)
    in_use = in_use_name(effective.sms_directory, effective.notify.sms_service)
    return json_response(_entry(request, found, in_use).model_dump(mode="json"))


@routes.put("/api/v1/sms-services/{name}")
@admin_only
async def put_service(request: web.Request) -> web.Response:
    """Create (201) or replace (200) a service; nothing is stored on 422."""
    name = request.match_info["name"]
    body = await json_body(request)
    try:
        async with request.app[DB].transaction() as session:
            entry, created = await request.app[RUNTIME_CONFIG].put_sms_service(
                session, name, body, actor=ADMIN_ACTOR
            )
    except ValidationError as exc:
        raise validation_error(exc, "invalid SMS service") from None
    except ServiceRejected as exc:
        details = [problem.detail() for problem in exc.problems]
        raise ApiError(422, "validation_error", str(exc), details) from None
    effective = await _fresh(request)
    logger.info(
        "SMS service %s (%s) %s through the admin API",
        name,
        entry.config.kind,
        "created" if created else "changed",
    )
    in_use = in_use_name(effective.sms_directory, effective.notify.sms_service)
    shown = _entry(request, entry, in_use).model_dump(mode="json")
    return json_response(shown, status=201 if created else 200)


@routes.delete("/api/v1/sms-services/{name}")
@admin_only
async def delete_service(request: web.Request) -> web.Response:
    """Remove a service (409 while the notify settings need it); answers the directory."""
    name = request.match_info["name"]
    try:
        async with request.app[DB].transaction() as session:
            found = await request.app[RUNTIME_CONFIG].delete_sms_service(
                session, name, actor=ADMIN_ACTOR
            )
    except ServiceInUse as exc:
        raise ApiError(409, "sms_service_in_use", str(exc)) from None
    if not found:
        raise _not_found(name)
    logger.info("SMS service %s removed through the admin API", name)
    return _directory(request, await _fresh(request))


@routes.post("/api/v1/sms-services/{name}/check")
@admin_only
async def check(request: web.Request) -> web.Response:
    """Read the service's balance now and say what works."""
    name = request.match_info["name"]
    await _fresh(request)
    provider = request.app[SMS_PROVIDERS].get(name)
    if provider is None:
        raise _not_found(name)
    checked = await check_service(provider, public_url=request.app[HTTP_CONTEXT].public_url)
    logger.info(
        "SMS service %s checked through the admin API: %s",
        name,
        "ok" if checked.ok else checked.error_kind,
    )
    balance = checked.balance
    return answer(
        SmsServiceCheck,
        {
            "service": checked.service,
            "kind": checked.kind,
            "ok": checked.ok,
            "balance": None if balance is None else str(balance.amount),
            "currency": None if balance is None else balance.currency,
            "error": checked.error,
            "error_kind": None if checked.error_kind is None else checked.error_kind.value,
            "callbacks_refused": checked.callbacks_refused,
            "detail": checked.line(),
        },
    )
