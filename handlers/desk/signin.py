"""Signing in and out of the desk.

- Admins: `POST /desk/signin` with the admin token (compared in constant time). Without an
  admin token configured the desk is closed to admins, and the page says so.
- Managers: the bot's `/desk` gives a one-time link `/desk/link/<token>`. Opening it shows
  a button; only pressing it (a POST) spends the link, so a link preview or a scanner
  fetching the URL does not use it up.
- `POST /desk/signout` ends the session in this browser.
"""

from __future__ import annotations

import logging

from aiohttp import web

from dispatch.credentials import same_secret
from handlers.common.keys import DB
from handlers.desk import sessions
from handlers.desk.config import DESK
from handlers.desk.forms import read_form
from handlers.desk.links import LINK_PATH, TOKEN_RE
from handlers.desk.pages import DeskError, page, render, see_other
from storage import directory
from storage.desk import tokens

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

JOURNAL = "/desk/journal"
SIGNIN = sessions.SIGNIN_PATH
_SPENT_LINK = DeskError(
    410,
    "gone",
    "this sign-in link is unknown, used or expired",
    "Ссылка для входа недействительна: она уже использована или её срок истёк. Отправьте "
    "боту команду /desk ещё раз.",
)


def _signin_page(request: web.Request, *, status: int = 200, wrong: bool = False) -> web.Response:
    config = request.app[DESK]
    return render(
        "signin.html.j2",
        status=status,
        wrong=wrong,
        admins_open=config.admin_token is not None and config.session_key is not None,
        closed=config.session_key is None,
        link_minutes=config.link_minutes,
    )


@routes.get("/desk")
@routes.get("/desk/")
@page
async def entrance(request: web.Request) -> web.StreamResponse:
    user = await sessions.current_user(request)
    return see_other(JOURNAL if user is not None else SIGNIN)


@routes.get(SIGNIN)
@page
async def signin_form(request: web.Request) -> web.StreamResponse:
    if await sessions.current_user(request) is not None:
        return see_other(JOURNAL)
    return _signin_page(request)


@routes.post(SIGNIN)
@page
async def signin(request: web.Request) -> web.StreamResponse:
    config = request.app[DESK]
    form = await read_form(request)
    token = config.admin_token
    if token is None or config.session_key is None:
        return _signin_page(request, status=403)
    if not same_secret(form.get("token", ""), token):
        logger.warning("desk sign-in with a wrong admin token from %s", request.remote)
        return _signin_page(request, status=401, wrong=True)
    logger.info("admin signed in to the desk from %s", request.remote)
    response = see_other(JOURNAL)
    sessions.start(response, config, sessions.new_session(config, "admin"))
    return response


def _link_token(value: str) -> str:
    if not TOKEN_RE.fullmatch(value):
        raise _SPENT_LINK
    return value


@routes.get(LINK_PATH + "{token}")
@page
async def link(request: web.Request) -> web.StreamResponse:
    token = _link_token(request.match_info["token"])
    async with request.app[DB].sessions() as session:
        manager_id = await tokens.usable(session, token)
        manager = await directory.manager_ref(session, manager_id) if manager_id else None
    if manager is None or request.app[DESK].session_key is None:
        raise _SPENT_LINK
    return render("link.html.j2", token=token, manager=manager)


@routes.post(LINK_PATH.rstrip("/"))
@page
async def use_link(request: web.Request) -> web.StreamResponse:
    config = request.app[DESK]
    if config.session_key is None:
        raise _SPENT_LINK
    token = _link_token((await read_form(request)).get("token", ""))
    async with request.app[DB].transaction() as session:
        manager_id = await tokens.use(session, token)
    if manager_id is None:
        logger.warning("desk sign-in link refused (unknown, used or expired)")
        raise _SPENT_LINK
    logger.info("manager %s signed in to the desk by a link from the bot", manager_id)
    response = see_other(JOURNAL)
    sessions.start(response, config, sessions.new_session(config, "manager", manager_id))
    return response


@routes.post("/desk/signout")
@page
async def signout(request: web.Request) -> web.StreamResponse:
    user = await sessions.signed_in(request)
    sessions.check_csrf(user, await read_form(request))
    response = see_other(SIGNIN)
    sessions.end(response, request.app[DESK])
    return response
