"""`GET /api/v1/balance` and `POST /api/v1/test-sms` (admin)."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from dispatch.balance import balance_report
from dispatch.channels.outcome import OutcomeKind
from dispatch.channels.sms.base import ProviderError, SmsProvider
from dispatch.schemas import Phone
from dispatch.sms_tools import send_test_sms
from handlers.admin import admin_only, json_body
from handlers.errors import ApiError, validation_error
from handlers.keys import DB, RUNTIME_CONFIG, SMS_PROVIDERS

routes = web.RouteTableDef()


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
    result = await send_test_sms(request.app[DB], provider, body.phone, actor="admin:api")
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
