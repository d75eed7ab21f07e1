"""«Настройки уведомлений», the seed's form: saved through `RuntimeConfig.update_notify`
(the code behind `PUT /api/v1/settings`, so its validation is the only one), with the test
SMS and the balance check of `/api/v1/test-sms` and `/api/v1/balance`."""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from dispatch.config import NotifySettings
from dispatch.delivery.channels.outcome import OutcomeKind
from dispatch.delivery.channels.sms.base import ProviderError
from dispatch.ops.balance import balance_report
from dispatch.ops.sms_tools import Refusal, TestSmsRefused, send_test_sms
from dispatch.runtime_config import SettingsRejected
from handlers.common.errors import ApiError
from handlers.common.keys import DB, RUNTIME_CONFIG, TEST_SMS_LIMITS
from handlers.desk.admin.access import admin, admin_form, field_errors
from handlers.desk.pages import page, render, see_other
from handlers.desk.sessions import DeskUser
from handlers.http.sms_admin import TestSmsIn
from handlers.http.sms_admin import _provider as sms_provider

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

PATH = "/desk/settings"
THRESHOLDS = (0, 50, 100, 200)
"""The seed's choices: «Не уведомлять» and 50 / 100 / 200 SMS left."""
OPTIONAL = (
    "errors",
    "rejected",
    "phone",
    "sms_result",
    "sms_problem",
    "sms_refused",
    "report",
    "balance_problem",
)
_LIST_SEPARATORS = re.compile(r"[\s,;]+")


def changes_of(form: dict[str, str]) -> dict[str, Any]:
    """The form as a partial `notify` change; the values stay strings for the domain's
    model to judge (a checkbox that is not posted is off)."""
    changes: dict[str, Any] = {
        key: form.get(key, "") for key in ("mode", "service", "reserve", "auto_reply")
    }
    changes["sms_service"] = form.get("sms_service") or None
    changes["low_balance_threshold"] = form.get("low_balance_threshold", "")
    changes["admin_emails"] = [
        item for item in _LIST_SEPARATORS.split(form.get("admin_emails", "")) if item
    ]
    changes["chat_enabled"] = form.get("chat_enabled") == "on"
    return changes


async def _show(
    request: web.Request,
    user: DeskUser,
    *,
    status: int = 200,
    values: dict[str, Any] | None = None,
    **context: Any,
) -> web.Response:
    async with request.app[DB].sessions() as session:
        effective = await request.app[RUNTIME_CONFIG].current(session)
    shown = effective.notify.model_dump(mode="json")
    shown.update(values or {})
    # Every part of the page is named, shown or not (the templates' undefined is strict).
    for key in OPTIONAL:
        context.setdefault(key, None)
    context["errors"] = context["errors"] or {}
    return render(
        "settings.html.j2",
        status=status,
        user=user,
        section="settings",
        values=shown,
        services=[service.name for service in effective.sms_services],
        thresholds=THRESHOLDS,
        saved=request.query.get("done") == "saved",
        **context,
    )


@routes.get(PATH)
@page
async def show(request: web.Request) -> web.StreamResponse:
    return await _show(request, await admin(request))


@routes.post(PATH)
@page
async def save(request: web.Request) -> web.StreamResponse:
    user, form = await admin_form(request)
    changes = changes_of(form)
    try:
        async with request.app[DB].transaction() as session:
            await request.app[RUNTIME_CONFIG].update_notify(session, changes, actor=user.actor)
    except ValidationError as exc:
        return await _show(request, user, status=422, values=changes, errors=field_errors(exc))
    except SettingsRejected as exc:
        return await _show(request, user, status=422, values=changes, rejected=str(exc))
    logger.info("notify settings changed in the desk")
    return see_other(f"{PATH}?done=saved")


@routes.post(PATH + "/test-sms")
@page
async def test_sms(request: web.Request) -> web.StreamResponse:
    user, form = await admin_form(request)
    phone = form.get("phone", "")
    try:
        wanted = TestSmsIn.model_validate({"phone": phone or None})
    except ValidationError as exc:
        problem = field_errors(exc).get("phone", "invalid phone")
        return await _show(request, user, status=422, phone=phone, sms_problem=problem)
    if wanted.phone is None:
        return await _show(request, user, status=422, phone=phone, sms_problem="required")
    try:
        provider = await sms_provider(request, None)
        result = await send_test_sms(
            request.app[DB],
            provider,
            wanted.phone,
            actor=user.actor,
            limits=request.app[TEST_SMS_LIMITS],
        )
    except ApiError as exc:
        return await _show(request, user, status=exc.status, phone=phone, sms_problem=exc.message)
    except TestSmsRefused as refused:
        status = {Refusal.COUNTRY: 422, Refusal.DAILY_LIMIT: 429}.get(refused.reason, 409)
        return await _show(
            request,
            user,
            status=status,
            phone=phone,
            sms_refused=refused.reason.value,
            sms_problem=refused.message,
        )
    return await _show(
        request,
        user,
        phone=phone,
        sms_result={
            "id": result.notification_id,
            "service": provider.name,
            "sent": result.outcome.kind is OutcomeKind.SENT,
            "outcome": result.outcome,
            "encoding": result.encoding,
            "segments": result.segments,
        },
    )


@routes.post(PATH + "/balance")
@page
async def balance(request: web.Request) -> web.StreamResponse:
    user, _ = await admin_form(request)
    db = request.app[DB]
    try:
        provider = await sms_provider(request, None)
        async with db.sessions() as session:
            notify: NotifySettings = (await request.app[RUNTIME_CONFIG].current(session)).notify
        report = await balance_report(provider, notify, db=db)
    except ApiError as exc:
        return await _show(request, user, status=exc.status, balance_problem=exc.message)
    except ProviderError as exc:
        return await _show(request, user, status=502, balance_problem=f"{provider.name}: {exc}")
    return await _show(request, user, report=report.as_dict())
