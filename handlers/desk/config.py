"""What the desk's views need from the process settings (built by `bot.app`), and the
desk's application keys."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from aiohttp import web

from handlers.desk.links import DeskLinks
from handlers.desk.live_feed import LiveFeed


@dataclass(frozen=True, slots=True)
class DeskConfig:
    session_key: bytes | None
    """Signs the session cookies; None: no key is configured and nobody can sign in."""
    admin_token: str | None
    """Admins sign in with it; None: the desk is closed to admins."""
    session_seconds: float = 12 * 3600
    secure_cookies: bool = False
    """Cookies only over https (`http.public_url` is https)."""
    link_base: str = "http://127.0.0.1:8080"
    """Where the one-time links of the bot's `/desk` point (no trailing slash)."""
    link_minutes: int = 10
    live_seconds: float = 2.0
    body_timeout_seconds: float = 30.0

    @classmethod
    def build(
        cls,
        *,
        secret: str | None,
        admin_token: str | None,
        telegram_token: str | None,
        public_url: str | None,
        host: str,
        port: int,
        session_hours: float,
        link_minutes: int,
        live_seconds: float,
        body_timeout_seconds: float,
    ) -> DeskConfig:
        return cls(
            session_key=session_key(secret, admin_token, telegram_token),
            admin_token=admin_token,
            session_seconds=session_hours * 3600,
            secure_cookies=(public_url or "").lower().startswith("https://"),
            link_base=link_base(public_url, host, port),
            link_minutes=link_minutes,
            live_seconds=live_seconds,
            body_timeout_seconds=body_timeout_seconds,
        )


def session_key(
    secret: str | None, admin_token: str | None, telegram_token: str | None
) -> bytes | None:
    """The cookies' HMAC key: `desk.secret`, else one derived from the admin token, else
    from the bot's token (a desk for managers only). Derived, so every replica and every
    process of `serve --workers` signs and checks with the same key."""
    material = secret or admin_token or telegram_token
    if not material:
        return None
    return hmac.new(material.encode(), b"vestnik desk sessions", hashlib.sha256).digest()


def link_base(public_url: str | None, host: str, port: int) -> str:
    if public_url:
        return public_url.rstrip("/")
    name = host.strip()
    if name in ("", "0.0.0.0", "::", "[::]"):
        name = "127.0.0.1"  # a wildcard bind answers on loopback too
    elif ":" in name and not name.startswith("["):
        name = f"[{name}]"
    return f"http://{name}:{port}"


DESK = web.AppKey("desk", DeskConfig)
DESK_FEED = web.AppKey("desk_feed", LiveFeed)
#: The bot's `/desk` issues its links with it (workflow data `desk_links`).
DESK_LINKS = web.AppKey("desk_links", DeskLinks)
