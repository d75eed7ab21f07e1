"""Desk sessions: a signed cookie (HMAC-SHA256), HttpOnly, SameSite=Strict, Secure behind
https, holding who signed in, until when, and the session's CSRF token.

Nothing is kept on the server: the signature makes the cookie unforgeable, the expiry
inside it (not the cookie's Max-Age, which a client may ignore) ends it. An admin's session
also carries a mark of the admin token it was opened with, so changing the token ends
every admin session. A manager's session names the manager, whose record is read on every
request (a deleted manager is signed out).

CSRF: every form carries the session's token (`csrf`), compared in constant time; a page
on another site can neither read the cookie nor the token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from dispatch.credentials import same_secret
from handlers.common.keys import DB
from handlers.desk.config import DESK, DeskConfig
from handlers.desk.pages import DeskError
from storage import directory

logger = logging.getLogger(__name__)

COOKIE = "vestnik_desk"
COOKIE_PATH = "/desk"
SIGNIN_PATH = "/desk/signin"
CSRF_FIELD = "csrf"
ADMIN_ACTOR = "admin:desk"
"""The actor written into the history rows of what an admin changes in the desk."""

Role = Literal["admin", "manager"]


@dataclass(frozen=True, slots=True)
class Session:
    role: Role
    manager_id: str | None
    expires_at: float
    """Unix time."""
    csrf: str
    admin_mark: str | None = None


@dataclass(frozen=True, slots=True)
class DeskUser:
    """Who is at the desk for this request."""

    session: Session
    name: str
    sees_all: bool
    """Admins, and managers who are admins in the directory (as in the bot)."""

    @property
    def manager_id(self) -> str | None:
        return self.session.manager_id

    @property
    def csrf(self) -> str:
        return self.session.csrf

    @property
    def actor(self) -> str:
        if self.session.role == "admin":
            return ADMIN_ACTOR
        return f"manager:{self.session.manager_id}"

    @property
    def scope(self) -> str | None:
        """The responsible manager whose notifications this user sees; None: all."""
        return None if self.sees_all else self.session.manager_id

    def may_see(self, responsible_manager_id: str | None) -> bool:
        scope = self.scope
        return scope is None or responsible_manager_id == scope


_USER_KEY = web.RequestKey[DeskUser | None]("desk_user")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, b"desk-session." + payload.encode("ascii"), hashlib.sha256).digest())


def admin_mark(key: bytes, admin_token: str) -> str:
    return _b64(hmac.new(key, b"admin-token." + admin_token.encode(), hashlib.sha256).digest())[
        :22
    ]


def encode(key: bytes, session: Session) -> str:
    body: dict[str, Any] = {
        "r": session.role,
        "m": session.manager_id,
        "e": int(session.expires_at),
        "c": session.csrf,
        "a": session.admin_mark,
    }
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    return f"{payload}.{_sign(key, payload)}"


def decode(key: bytes, value: str, *, now: float) -> Session | None:
    """The session in a cookie value, or None when it is forged, damaged or over."""
    payload, dot, signature = value.partition(".")
    if not dot or not payload.isascii() or not same_secret(signature, _sign(key, payload)):
        return None
    try:
        body = json.loads(_unb64(payload))
        session = Session(
            role=body["r"],
            manager_id=body["m"],
            expires_at=float(body["e"]),
            csrf=str(body["c"]),
            admin_mark=body["a"],
        )
    except (binascii.Error, ValueError, KeyError, TypeError):
        return None
    if session.role not in ("admin", "manager") or session.expires_at <= now:
        return None
    if session.role == "manager" and not isinstance(session.manager_id, str):
        return None
    return session


def new_session(config: DeskConfig, role: Role, manager_id: str | None = None) -> Session:
    assert config.session_key is not None
    mark = None
    if role == "admin":
        assert config.admin_token is not None
        mark = admin_mark(config.session_key, config.admin_token)
    return Session(
        role=role,
        manager_id=manager_id,
        expires_at=time.time() + config.session_seconds,
        csrf=secrets.token_urlsafe(24),
        admin_mark=mark,
    )


def start(response: web.StreamResponse, config: DeskConfig, session: Session) -> None:
    """Set the session's cookie on `response`."""
    assert config.session_key is not None
    response.set_cookie(
        COOKIE,
        encode(config.session_key, session),
        max_age=max(1, int(session.expires_at - time.time())),
        path=COOKIE_PATH,
        secure=config.secure_cookies,
        httponly=True,
        samesite="Strict",
    )


def end(response: web.StreamResponse, config: DeskConfig) -> None:
    response.del_cookie(
        COOKIE, path=COOKIE_PATH, secure=config.secure_cookies, httponly=True, samesite="Strict"
    )


async def current_user(request: web.Request) -> DeskUser | None:
    """The signed-in user of this request, or None (read once per request)."""
    if _USER_KEY in request:
        return request[_USER_KEY]
    user = await _read_user(request)
    request[_USER_KEY] = user
    return user


async def _read_user(request: web.Request) -> DeskUser | None:
    config = request.app[DESK]
    value = request.cookies.get(COOKIE)
    if not value or config.session_key is None:
        return None
    session = decode(config.session_key, value, now=time.time())
    if session is None:
        return None
    if session.role == "admin":
        token = config.admin_token
        if token is None or session.admin_mark is None:
            return None
        if not same_secret(session.admin_mark, admin_mark(config.session_key, token)):
            return None
        return DeskUser(session, name="Администратор", sees_all=True)
    assert session.manager_id is not None
    async with request.app[DB].sessions() as db_session:
        manager = await directory.manager_ref(db_session, session.manager_id)
    if manager is None:
        logger.info("desk session of a manager no longer in the directory: signed out")
        return None
    return DeskUser(session, name=manager.name, sees_all=manager.is_admin)


async def signed_in(request: web.Request) -> DeskUser:
    """The user, or a redirect to the sign-in page (a 401 for a stream or a script; htmx
    is told to load the sign-in page instead of swapping part of it in)."""
    user = await current_user(request)
    if user is not None:
        return user
    if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
        raise web.HTTPSeeOther(SIGNIN_PATH)
    raise DeskError(
        401,
        "unauthorized",
        "sign in to the desk first",
        "Сначала войдите.",
        headers={"HX-Redirect": SIGNIN_PATH},
    )


def check_csrf(user: DeskUser, form: dict[str, str]) -> None:
    """A form of this session's pages, or a 403 that changes nothing."""
    if not same_secret(form.get(CSRF_FIELD, ""), user.csrf):
        logger.warning("desk form without this session's CSRF token refused (%s)", user.actor)
        raise DeskError(
            403,
            "forbidden",
            "the form does not carry this session's CSRF token",
            "Форма устарела или пришла не со страницы рабочего места. Обновите страницу и "
            "повторите.",
        )
