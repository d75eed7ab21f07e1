"""`GET`/`PUT /api/v1/settings`: the effective notify settings (CONTRACT §6).

The config file's `[notify]` overlaid with what this API stored; the SMS services of the
directory are listed read-only and without credentials (they are managed by
`/api/v1/sms-services`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated

from aiohttp import web
from pydantic import ConfigDict, PlainSerializer, ValidationError

from dispatch.config import NotifySettings, SmsKind, SmsServiceConfig
from dispatch.runtime_config import SettingsRejected
from handlers.common.answers import Answer, json_response
from handlers.common.auth import ADMIN_ACTOR, admin_only
from handlers.common.errors import ApiError, validation_error
from handlers.common.keys import DB, RUNTIME_CONFIG
from handlers.common.parsing import json_body

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()


def _number(value: Decimal) -> int | float:
    # A JSON number, as the settings were always answered (pydantic would write a string).
    return int(value) if value == value.to_integral_value() else float(value)


class SmsService(Answer):
    """A service of the directory by name and kind (never its credentials)."""

    name: str
    kind: SmsKind
    sender: str | None


class Settings(NotifySettings):
    """The effective notify settings (config file overlaid with what this API stored) and
    the SMS services, read-only and without credentials."""

    model_config = ConfigDict(
        json_schema_serialization_defaults_required=True, use_attribute_docstrings=True
    )

    low_balance_threshold: Annotated[
        Decimal, PlainSerializer(_number, return_type=int | float)
    ] = NotifySettings.model_fields["low_balance_threshold"].default
    sms_services: list[SmsService]
    """Read-only here: managed by `/api/v1/sms-services`."""

    @classmethod
    def of(cls, notify: NotifySettings, services: Sequence[SmsServiceConfig]) -> Settings:
        return cls.model_validate(
            {
                **notify.model_dump(),
                "sms_services": [SmsService.model_validate(service) for service in services],
            }
        )

    def response(self) -> web.Response:
        return json_response(self.model_dump(mode="json"))


@routes.get("/api/v1/settings")
@admin_only
async def get_settings(request: web.Request) -> web.Response:
    async with request.app[DB].sessions() as session:
        effective = await request.app[RUNTIME_CONFIG].current(session)
    return Settings.of(effective.notify, effective.sms_services).response()


@routes.put("/api/v1/settings")
@admin_only
async def put_settings(request: web.Request) -> web.Response:
    """Change some notify settings; the others keep their values. Nothing is stored on 422."""
    changes = await json_body(request)
    if "sms_services" in changes:
        raise ApiError(
            422,
            "validation_error",
            "sms_services is read-only here: manage them with /api/v1/sms-services",
            [{"loc": ["sms_services"], "message": "read-only", "type": "read_only"}],
        )
    try:
        async with request.app[DB].transaction() as session:
            notify = await request.app[RUNTIME_CONFIG].update_notify(
                session, changes, actor=ADMIN_ACTOR
            )
    except ValidationError as exc:
        raise validation_error(exc, "invalid settings") from None
    except SettingsRejected as exc:
        raise ApiError(422, "settings_rejected", str(exc)) from None
    logger.info("notify settings changed through the admin API: %s", ", ".join(sorted(changes)))
    async with request.app[DB].sessions() as session:
        effective = await request.app[RUNTIME_CONFIG].current(session)
    return Settings.of(notify, effective.sms_services).response()
