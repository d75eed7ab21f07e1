"""One-time sign-in links of the web desk: issued by the bot's `/desk` to one manager,
valid for minutes, used once.

Only the SHA-256 of a token is stored: whoever reads the table cannot sign in with it.
Using a link is one conditional UPDATE, so two tabs opening the same link cannot both win.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import DeskToken
from storage.types import utcnow

# Used and expired rows are kept a while for the log's sake, then dropped when the next
# link is issued (no scheduler job needed for a table this small).
_KEEP = timedelta(days=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


async def issue(
    session: AsyncSession, token: str, *, manager_id: str, expires_at: datetime
) -> None:
    """Store a new link for `manager_id` (and forget links that ended a day ago)."""
    now = utcnow()
    await session.execute(delete(DeskToken).where(DeskToken.expires_at < now - _KEEP))
    session.add(
        DeskToken(
            token_hash=token_hash(token),
            manager_id=manager_id,
            created_at=now,
            expires_at=expires_at,
        )
    )


async def usable(session: AsyncSession, token: str) -> str | None:
    """The manager a link signs in, while it is unused and unexpired; it stays unused."""
    return (
        await session.execute(
            select(DeskToken.manager_id).where(
                DeskToken.token_hash == token_hash(token),
                DeskToken.used_at.is_(None),
                DeskToken.expires_at > utcnow(),
            )
        )
    ).scalar_one_or_none()


async def use(session: AsyncSession, token: str) -> str | None:
    """Spend a link: the manager it signs in, or None when it is unknown, used or expired."""
    now = utcnow()
    return (
        await session.execute(
            update(DeskToken)
            .where(
                DeskToken.token_hash == token_hash(token),
                DeskToken.used_at.is_(None),
                DeskToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(DeskToken.manager_id)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
