"""`GET /api/v1/clients/{id}/telegram-link` and `GET /api/v1/managers/{id}/telegram-link`
(admin): a one-time `https://t.me/<bot>?start=<token>` deep link that links the chat of
whoever opens it first (see `dispatch.subscriptions`). Every call makes a new token."""

from __future__ import annotations

import logging
from typing import Literal

from aiohttp import web
from pydantic import Field

from dispatch.conversation import subscriptions
from handlers.common.answers import Answer, IsoTime, answer
from handlers.common.auth import admin_only
from handlers.common.errors import ApiError
from handlers.common.ids import card_id
from handlers.common.keys import BOT_USERNAME, DB

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

T_ME = "https://t.me/"


class TelegramLink(Answer):
    """A one-time deep link into the bot."""

    url: str = Field(
        json_schema_extra={"format": "uri", "examples": [f"{T_ME}vestnik_bot?start=Zk3…"]}
    )
    token: str = Field(pattern=f"^{subscriptions.DEEP_LINK_PAYLOAD.pattern}$")
    """The `/start` payload; single use."""
    expires_at: IsoTime


class ClientTelegramLink(TelegramLink):
    """A deep link that subscribes the opening chat to the client."""

    client_id: str


class ManagerTelegramLink(TelegramLink):
    """A deep link that subscribes the opening chat to the manager."""

    manager_id: str


async def _username(request: web.Request) -> str:
    username = request.app.get(BOT_USERNAME)
    if username is None:
        raise ApiError(
            409,
            "telegram_not_configured",
            "no Telegram bot is configured (VESTNIK_TELEGRAM__TOKEN)",
        )
    try:
        return await username()
    except Exception as exc:
        logger.warning("getMe failed while making a deep link: %s", exc)
        raise ApiError(
            502, "telegram_unavailable", "the Telegram Bot API did not answer getMe"
        ) from None


@routes.get("/api/v1/clients/{id}/telegram-link")
@admin_only
async def client_telegram_link(request: web.Request) -> web.Response:
    return await _issue(request, "client")


@routes.get("/api/v1/managers/{id}/telegram-link")
@admin_only
async def manager_telegram_link(request: web.Request) -> web.Response:
    return await _issue(request, "manager")


async def _issue(request: web.Request, what: Literal["client", "manager"]) -> web.Response:
    """A one-time deep link that subscribes the chat opening it to the client or manager."""
    owner_id = card_id(request, what)
    username = await _username(request)
    issued = await subscriptions.issue_link_token(
        request.app[DB],
        client_id=owner_id if what == "client" else None,
        manager_id=owner_id if what == "manager" else None,
    )
    if issued is None:
        raise ApiError(404, "not_found", f"{what} {owner_id} does not exist")
    logger.info("deep link issued for %s %s", what, owner_id)
    model = ClientTelegramLink if what == "client" else ManagerTelegramLink
    return answer(
        model,
        {
            f"{what}_id": owner_id,
            "url": f"{T_ME}{username}?start={issued.token}",
            "token": issued.token,
            "expires_at": issued.expires_at,
        },
    )
