"""`GET /api/v1/balance` and `POST /api/v1/test-sms` (admin)."""

from __future__ import annotations

import logging
import math
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from dispatch.delivery.channels.outcome import OutcomeKind
from dispatch.delivery.channels.sms.base import ProviderError, SmsProvider
from dispatch.intake.schemas import Phone
from dispatch.ops.balance import ThresholdState, balance_report
from dispatch.ops.sms_price import PriceSource
from dispatch.ops.sms_tools import Refusal, TestSmsRefused, send_test_sms
from dispatch.render.segments import Encoding
from handlers.common.answers import Answer, answer
from handlers.common.auth import ADMIN_ACTOR, admin_only
from handlers.common.errors import ApiError
from handlers.common.keys import DB, RUNTIME_CONFIG, SMS_PROVIDERS, TEST_SMS_LIMITS
from handlers.common.parsing import json_body, validated
from storage.types import utcnow

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()


class TestSmsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    phone: Phone
    """The number to send to, in a country of `test_sms.countries`."""
    service: str | None = None
    """A name from [[sms_services]]; default: the one notifications use."""


class BalanceQuery(BaseModel):
    """Query parameters of `GET /api/v1/balance`."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    service: str | None = None
    """A name from [[sms_services]]; default: the one notifications use."""


class Balance(Answer):
    """The SMS balance of a provider in money and in SMS, with the low-balance threshold
    state (the same report as `vestnik balance` and the bot's /balance)."""

    service: str
    kind: str
    balance: str
    """Decimal, as a string."""
    currency: str | None
    price_per_sms: str | None
    """The price of one segment (decimal string); null when nothing tells it."""
    price_source: PriceSource | None
    """provider: its price API; recorded: the average of the last sends; configured:
    `price_per_sms` of the service."""
    sms_left: int | None
    """How many SMS segments the balance pays for; null without a price."""
    threshold: int
    """`notify.low_balance_threshold`, in SMS."""
    below_threshold: bool
    state: ThresholdState
    """off: threshold 0; below: fewer SMS left than the threshold; ok: at or above;
    unknown: no price of one SMS, so nothing to compare."""
    alert_active: bool | None
    """Whether the low-balance alert is raised (null when unknown)."""
    spent_per_day: str | None
    """The average spending a day over the last 7 days (decimal string); null before any."""
    days_left: float | None
    """How many days the balance lasts at that spending; null before any."""


class TestSmsResult(Answer):
    """What became of a test SMS (journaled as a `test_sms` notification)."""

    notification_id: int
    service: str
    status: Literal["sent", "failed"]
    reason: str
    error: str | None
    provider_message_id: str | None
    encoding: Encoding
    segments: int


async def _provider(request: web.Request, name: str | None) -> SmsProvider:
    providers = await request.app[SMS_PROVIDERS].refresh(request.app[DB])
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
    query = BalanceQuery.model_validate(dict(request.query))
    provider = await _provider(request, query.service)
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
    return answer(Balance, report.as_dict())


@routes.post("/api/v1/test-sms")
@admin_only
async def post_test_sms(request: web.Request) -> web.Response:
    """Send the test SMS now; it is journaled as a `test_sms` notification."""
    body = validated(TestSmsIn, await json_body(request), "invalid test SMS request")
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
            actor=ADMIN_ACTOR,
            limits=request.app[TEST_SMS_LIMITS],
        )
    except TestSmsRefused as refused:
        return _refusal(refused)
    sent = result.outcome.kind is OutcomeKind.SENT
    return answer(
        TestSmsResult,
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
