"""SMS services: the run-time directory (list, add, edit, check, remove) through the code
behind `/api/v1/sms-services` (`RuntimeConfig.put_sms_service` and
`delete_sms_service`, `check_service`). Secrets are write-only: their inputs stay empty,
and an empty one keeps the secret in effect."""

from __future__ import annotations

import logging
from typing import Any, get_args

from aiohttp import web
from pydantic import ValidationError

from dispatch.config import SmsKind
from dispatch.delivery.channels.sms.directory import (
    SECRET_FIELDS,
    ServiceInUse,
    ServiceRejected,
    find,
    in_use_name,
    masked,
)
from dispatch.delivery.channels.sms.registry import callbacks_refused
from dispatch.ops.sms_check import ServiceCheck, check_service
from dispatch.runtime_config import EffectiveConfig
from handlers.common.keys import DB, HTTP_CONTEXT, RUNTIME_CONFIG, SMS_PROVIDERS
from handlers.desk.admin.access import admin, admin_form, field_errors
from handlers.desk.pages import DeskError, page, render, see_other
from handlers.desk.sessions import DeskUser

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

PATH = "/desk/sms-services"
KINDS: tuple[str, ...] = get_args(SmsKind)
FIELDS = (
    ("base_url", "Адрес API (если не стандартный)", "url"),
    ("login", "Логин (SMSC)", "text"),
    ("password", "Пароль (SMSC; токен Twilio)", "password"),
    ("api_key", "API-ключ (SMSC, SMS.ru, SMS Aero)", "password"),
    ("email", "E-mail аккаунта (SMS Aero)", "email"),
    ("account_sid", "Account SID (Twilio)", "text"),
    ("token", "Токен (http; секрет адреса отчётов)", "password"),
    ("sender", "Имя отправителя", "text"),
    ("callback_url", "Адрес для отчётов о доставке", "url"),
    ("rate_per_second", "SMS в секунду (не больше)", "number"),
    ("timeout_seconds", "Ожидание ответа, секунд", "number"),
    ("price_per_sms", "Цена одного SMS (если сервис её не сообщает)", "number"),
)
"""The entry's fields after its name and kind, as `[[sms_services]]` has them."""
_DONE = {
    "saved": "Сервис сохранён.",
    "removed": "Сервис удалён.",
}


async def _fresh(request: web.Request) -> EffectiveConfig:
    async with request.app[DB].sessions() as session:
        return await request.app[RUNTIME_CONFIG].fresh(session)


async def _list(
    request: web.Request,
    user: DeskUser,
    *,
    status: int = 200,
    checked: ServiceCheck | None = None,
    problem: str | None = None,
) -> web.Response:
    effective = await _fresh(request)
    public_url = request.app[HTTP_CONTEXT].public_url
    in_use = in_use_name(effective.sms_directory, effective.notify.sms_service)
    services = [
        {
            **masked(entry.config),
            "origin": entry.origin,
            "in_use": entry.config.name == in_use,
            "callbacks_refused": callbacks_refused(entry.config, public_url),
        }
        for entry in effective.sms_directory
    ]
    done = request.query.get("done", "")
    return render(
        "sms_services.html.j2",
        status=status,
        user=user,
        section="sms_services",
        services=services,
        checked=checked,
        problem=problem,
        done=_DONE.get(done),
    )


@routes.get(PATH)
@page
async def listing(request: web.Request) -> web.StreamResponse:
    return await _list(request, await admin(request))


def _form(
    user: DeskUser,
    *,
    name: str | None,
    values: dict[str, Any],
    status: int = 200,
    errors: dict[str, str] | None = None,
    rejected: str | None = None,
) -> web.Response:
    return render(
        "sms_service.html.j2",
        status=status,
        user=user,
        section="sms_services",
        name=name,
        values=values,
        kinds=KINDS,
        fields=FIELDS,
        secrets=SECRET_FIELDS,
        errors=errors or {},
        rejected=rejected,
    )


@routes.get(PATH + "/new")
@page
async def new(request: web.Request) -> web.StreamResponse:
    return _form(await admin(request), name=None, values={"kind": "smsc"})


@routes.get(PATH + "/{name}/edit")  # "/edit": a service may be named "new"
@page
async def edit(request: web.Request) -> web.StreamResponse:
    user = await admin(request)
    name = request.match_info["name"]
    entry = find((await _fresh(request)).sms_directory, name)
    if entry is None:
        raise _not_found(name)
    return _form(user, name=name, values=masked(entry.config))


def _not_found(name: str) -> DeskError:
    return DeskError(404, "not_found", f"no SMS service named {name!r}", "Такого SMS-сервиса нет.")


def body_of(form: dict[str, str]) -> dict[str, Any]:
    """The form as a PUT body: an empty secret is left out (kept), any other empty field
    is unset."""
    body: dict[str, Any] = {"kind": form.get("kind", "")}
    for field, _, _ in FIELDS:
        value = form.get(field, "").strip()
        if value:
            body[field] = value
        elif field not in SECRET_FIELDS:
            body[field] = None
    for field in ("rate_per_second", "timeout_seconds"):
        if body[field] is None:
            del body[field]  # the model's default
    return body


@routes.post(PATH)
@page
async def save(request: web.Request) -> web.StreamResponse:
    user, form = await admin_form(request)
    editing = form.get("editing") or None
    name = editing or form.get("name", "").strip()
    body = body_of(form)
    shown = {**body, "name": name}
    for field in SECRET_FIELDS:
        shown.pop(field, None)  # never echoed, even when just typed
    if not name:
        return _form(
            user, name=editing, values=shown, status=422, errors={"name": "Укажите название."}
        )
    if editing is None and find((await _fresh(request)).sms_directory, name) is not None:
        errors = {"name": "Сервис с таким названием уже есть: откройте его, чтобы изменить."}
        return _form(user, name=None, values=shown, status=409, errors=errors)
    try:
        async with request.app[DB].transaction() as session:
            await request.app[RUNTIME_CONFIG].put_sms_service(
                session, name, body, actor=user.actor
            )
    except ValidationError as exc:
        errors = field_errors(exc)
        return _form(user, name=editing, values=shown, status=422, errors=errors)
    except ServiceRejected as exc:
        errors = {problem.field: problem.message for problem in exc.problems}
        return _form(
            user, name=editing, values=shown, status=422, errors=errors, rejected=str(exc)
        )
    logger.info("SMS service %s saved in the desk", name)
    return see_other(f"{PATH}?done=saved")


@routes.post(PATH + "/{name}/check")
@page
async def check(request: web.Request) -> web.StreamResponse:
    user, _ = await admin_form(request)
    name = request.match_info["name"]
    await _fresh(request)
    provider = request.app[SMS_PROVIDERS].get(name)
    if provider is None:
        raise _not_found(name)
    checked = await check_service(provider, public_url=request.app[HTTP_CONTEXT].public_url)
    logger.info("SMS service %s checked in the desk: %s", name, checked.error_kind or "ok")
    return await _list(request, user, checked=checked)


@routes.post(PATH + "/{name}/delete")
@page
async def delete(request: web.Request) -> web.StreamResponse:
    user, _ = await admin_form(request)
    name = request.match_info["name"]
    try:
        async with request.app[DB].transaction() as session:
            found = await request.app[RUNTIME_CONFIG].delete_sms_service(
                session, name, actor=user.actor
            )
    except ServiceInUse as exc:
        return await _list(request, user, status=409, problem=str(exc))
    if not found:
        raise _not_found(name)
    logger.info("SMS service %s removed in the desk", name)
    return see_other(f"{PATH}?done=removed")
