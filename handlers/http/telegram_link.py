"""`GET /api/v1/clients/{id}/telegram-link` and `GET /api/v1/managers/{id}/telegram-link`
(admin): a one-time `https://t.me/<bot>?start=<token>` deep link that links the chat of
whoever opens it first (see `dispatch.subscriptions`). Every call makes a new token."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Literal

from aiohttp import web

from dispatch.conversation import subscriptions
from handlers.common.errors import ApiError
from handlers.common.ids import card_id
from handlers.common.keys import DB
from handlers.http.admin import admin_only

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

BOT_USERNAME = web.AppKey[Callable[[], Awaitable[str]]]("telegram_bot_username")
"""Set while the bot runs: returns the bot's username (getMe, cached by aiogram)."""

T_ME = "https://t.me/"


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


def _answer(
    key: str, owner_id: str, username: str, token: str, expires_at: datetime
) -> dict[str, str]:
    return {
        key: owner_id,
        "url": f"{T_ME}{username}?start={token}",
        "token": token,
        "expires_at": expires_at.isoformat(),
    }


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
    return web.json_response(
        _answer(f"{what}_id", owner_id, username, issued.token, issued.expires_at)
    )
