"""Usable Telegram chats: the one definition, and the lookups built on it.

A chat is usable when it is linked to the recipient, its user has not sent /stop and has not
blocked the bot. Every query that picks chats to write to uses `usable()`, so the rule is
stated once. Also here: whether a chat is linked or stopped at all, and the one-time
deep-link tokens that create links.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import cast

from sqlalchemy import ColumnElement, Table, and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import LinkToken, TelegramLink

_links = cast(Table, TelegramLink.__table__)
_tokens = cast(Table, LinkToken.__table__)


def usable() -> ColumnElement[bool]:
    """The condition on `telegram_links` rows whose chat may receive messages."""
    return and_(_links.c.stopped.is_(False), _links.c.blocked.is_(False))


@dataclass(frozen=True, slots=True)
class UsableChats:
    """Chat ids by client id and by manager id, oldest link first."""

    clients: dict[str, list[int]] = field(default_factory=dict)
    managers: dict[str, list[int]] = field(default_factory=dict)


async def usable_chats_many(
    session: AsyncSession, *, client_ids: Collection[str], manager_ids: Collection[str]
) -> UsableChats:
    """The usable chats of every client in `client_ids` and every manager in `manager_ids`,
    in one query (the workers' per-batch lookup)."""
    wanted = []
    if client_ids:
        wanted.append(_links.c.client_id.in_(set(client_ids)))
    if manager_ids:
        wanted.append(_links.c.manager_id.in_(set(manager_ids)))
    found = UsableChats()
    if not wanted:
        return found
    result = await session.execute(
        select(_links.c.chat_id, _links.c.client_id, _links.c.manager_id)
        .where(or_(*wanted), usable())
        .order_by(_links.c.id)
    )
    for chat_id, client_id, manager_id in result.all():
        if client_id is not None and client_id in client_ids:
            found.clients.setdefault(client_id, []).append(chat_id)
        if manager_id is not None and manager_id in manager_ids:
            found.managers.setdefault(manager_id, []).append(chat_id)
    return found


async def usable_manager_chats(session: AsyncSession, manager_ids: Collection[str]) -> list[int]:
    """The usable chats of these managers together, oldest link first, each once."""
    if not manager_ids:
        return []
    result = await session.execute(
        select(_links.c.chat_id)
        .where(_links.c.manager_id.in_(list(manager_ids)), usable())
        .order_by(_links.c.id)
    )
    return list(dict.fromkeys(row.chat_id for row in result))


async def chat_is_linked(session: AsyncSession, chat_id: int) -> bool:
    row = (
        await session.execute(select(_links.c.id).where(_links.c.chat_id == chat_id).limit(1))
    ).first()
    return row is not None


async def chat_is_stopped(session: AsyncSession, chat_id: int) -> bool:
    """True when every link of the chat is stopped (and it has at least one)."""
    rows = (
        await session.execute(select(_links.c.stopped).where(_links.c.chat_id == chat_id))
    ).all()
    return bool(rows) and all(row.stopped for row in rows)


# --------------------------------------------------------------------------- link tokens
# One-time deep-link tokens: `/start <token>` links the chat that uses it.


class TokenState(StrEnum):
    CLAIMED = "claimed"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    TAKEN = "taken"
    """Used by another Telegram user: a token is bound to the first one."""


@dataclass(frozen=True, slots=True)
class TokenClaim:
    state: TokenState
    client_id: str | None = None
    manager_id: str | None = None


async def insert_link_token(
    session: AsyncSession,
    *,
    token: str,
    client_id: str | None,
    manager_id: str | None,
    now: datetime,
    expires_at: datetime,
) -> None:
    await session.execute(
        insert(_tokens).values(
            token=token,
            client_id=client_id,
            manager_id=manager_id,
            created_at=now,
            expires_at=expires_at,
        )
    )


async def claim_link_token(
    session: AsyncSession, token: str, *, user_id: int, now: datetime
) -> TokenClaim:
    """Bind the token to `user_id` on first use; the same user may use it again."""
    row = (
        await session.execute(
            select(
                _tokens.c.client_id,
                _tokens.c.manager_id,
                _tokens.c.expires_at,
                _tokens.c.used_by_user_id,
            ).where(_tokens.c.token == token)
        )
    ).first()
    if row is None:
        return TokenClaim(TokenState.UNKNOWN)
    if row.used_by_user_id is not None and row.used_by_user_id != user_id:
        return TokenClaim(TokenState.TAKEN)
    if row.expires_at <= now:
        return TokenClaim(TokenState.EXPIRED)
    if row.used_by_user_id is None:
        # Conditional, so two users racing for one token cannot both win.
        result = await session.execute(
            update(_tokens)
            .where(_tokens.c.token == token, _tokens.c.used_by_user_id.is_(None))
            .values(used_by_user_id=user_id, used_at=now)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return TokenClaim(TokenState.TAKEN)
    return TokenClaim(TokenState.CLAIMED, row.client_id, row.manager_id)
