"""`GET /api/v1/balance` and `POST /api/v1/test-sms` (admin)."""

from __future__ import annotations

import logging
import math

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from dispatch.config import SmsTestSettings
from dispatch.delivery.channels.outcome import OutcomeKind
from dispatch.delivery.channels.sms.base import ProviderError, SmsProvider
from dispatch.intake.schemas import Phone
from dispatch.ops.balance import balance_report
from dispatch.ops.sms_tools import Refusal, TestSmsRefused, send_test_sms
from handlers.common.errors import ApiError, validation_error
from handlers.common.keys import DB, RUNTIME_CONFIG, SMS_PROVIDERS
from handlers.http.admin import admin_only, json_body
from storage.types import utcnow

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

TEST_SMS_LIMITS = web.AppKey("test_sms_limits", SmsTestSettings)
"""The `[test_sms]` settings: allowed countries and the daily cap (shared with the bot)."""


class TestSmsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Phone
    service: str | None = None
    """A name from [[sms_services]]; default: the one notifications use."""


async def _provider(request: web.Request, name: str | None) -> SmsProvider:
    providers = request.app[SMS_PROVIDERS]
    if not providers:
        raise ApiError(409, "no_sms_service", "no SMS service is configured ([[sms_services]])")
    if name is None:
        async with request.app[DB].sessions() as session:
            notify = (await request.app[RUNTIME_CONFIG].current(session)).notify
        name = notify.sms_service or next(iter(providers))
    provider = providers.get(name)
    if provider is None:
        raise ApiError(404, "not_found", f"no SMS service named {name!r} is configured")
    return provider


@routes.get("/api/v1/balance")
@admin_only
async def get_balance(request: web.Request) -> web.Response:
    """The SMS balance of the configured provider (or `?service=NAME`), with the threshold
    state: the same report as `vestnik balance` and the bot's /balance."""
    provider = await _provider(request, request.query.get("service"))
    db = request.app[DB]
    async with db.sessions() as session:
        notify = (await request.app[RUNTIME_CONFIG].current(session)).notify
    try:
        report = await balance_report(provider, notify, db=db)
    except ProviderError as exc:
        raise ApiError(
            502,
            "provider_error",
            f"{provider.name} did not give its balance: {exc}",
            [{"kind": exc.error.value}],
        ) from None
    return web.json_response(report.as_dict())


@routes.post("/api/v1/test-sms")
@admin_only
async def post_test_sms(request: web.Request) -> web.Response:
    """Send the test SMS now; it is journaled as a `test_sms` notification."""
    try:
        body = TestSmsIn.model_validate(await json_body(request))
    except ValidationError as exc:
        raise validation_error(exc, "invalid test SMS request") from None
    if body.phone is None:
        raise ApiError(
            422,
            "validation_error",
            "phone is required",
            [{"loc": ["phone"], "message": "required", "type": "missing"}],
        )
    provider = await _provider(request, body.service)
    try:
        result = await send_test_sms(
            request.app[DB],
            provider,
            body.phone,
            actor="admin:api",
            limits=request.app[TEST_SMS_LIMITS],
        )
    except TestSmsRefused as refused:
        return _refusal(refused)
    sent = result.outcome.kind is OutcomeKind.SENT
    return web.json_response(
        {
            "notification_id": result.notification_id,
            "service": provider.name,
            "status": "sent" if sent else "failed",
            "reason": result.outcome.reason,
            "error": result.outcome.error.value if result.outcome.error else None,
            "provider_message_id": result.outcome.provider_message_id,
            "encoding": result.encoding,
            "segments": result.segments,
        },
        status=200 if sent else 502,
    )


def _refusal(refused: TestSmsRefused) -> web.Response:
    """The contract's error answer for a refused test SMS: 422 for a country outside
    `test_sms.countries`, 429 (with `Retry-After`) over the daily cap, 409 when off."""
    logger.warning("test SMS refused through the admin API: %s", refused.reason.value)
    if refused.reason is Refusal.COUNTRY:
        return ApiError(
            422,
            "validation_error",
            refused.message,
            [
                {
                    "loc": ["phone"],
                    "message": "country not allowed",
                    "type": "country_not_allowed",
                    "allowed": list(refused.countries),
                }
            ],
        ).response()
    if refused.reason is Refusal.DAILY_LIMIT and refused.resets_at is not None:
        response = ApiError(
            429,
            "too_many_requests",
            refused.message,
            [{"limit": refused.limit, "resets_at": refused.resets_at.isoformat()}],
        ).response()
        wait = math.ceil((refused.resets_at - utcnow()).total_seconds())
        response.headers["Retry-After"] = str(max(1, wait))
        return response
    return ApiError(409, "test_sms_disabled", refused.message).response()
