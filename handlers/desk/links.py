"""The one-time sign-in links the bot's `/desk` gives a manager: a random token in the
path, valid `desk.link_minutes`, used once, bound to that manager."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from storage.database import Database
from storage.desk import tokens
from storage.types import utcnow

LINK_PATH = "/desk/link/"
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{32,64}")
"""What `secrets.token_urlsafe(32)` makes; anything else is no link of ours."""


@dataclass(frozen=True, slots=True)
class SignInLink:
    url: str
    minutes: int


@dataclass(frozen=True, slots=True)
class DeskLinks:
    base: str
    """`http.public_url`, or this server's own address."""
    minutes: int

    async def issue(self, db: Database, manager_id: str) -> SignInLink:
        token = secrets.token_urlsafe(32)
        async with db.transaction() as session:
            await tokens.issue(
                session,
                token,
                manager_id=manager_id,
                expires_at=utcnow() + timedelta(minutes=self.minutes),
            )
        return SignInLink(f"{self.base}{LINK_PATH}{token}", self.minutes)
