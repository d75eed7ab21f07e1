"""Usable Telegram chats of many recipients at once (the workers' per-batch lookup)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import TelegramLink

_links = TelegramLink.__table__


@dataclass(frozen=True, slots=True)
class UsableChats:
    """Chat ids by client id and by manager id, oldest link first."""

    clients: dict[str, list[int]] = field(default_factory=dict)
    managers: dict[str, list[int]] = field(default_factory=dict)


async def usable_chats_many(
    session: AsyncSession, *, client_ids: Collection[str], manager_ids: Collection[str]
) -> UsableChats:
    """The chats that may receive notifications (linked, not stopped, not blocked) of every
    client in `client_ids` and every manager in `manager_ids`, in one query."""
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
        .where(or_(*wanted), _links.c.stopped.is_(False), _links.c.blocked.is_(False))
        .order_by(_links.c.id)
    )
    for chat_id, client_id, manager_id in result.all():
        if client_id is not None and client_id in client_ids:
            found.clients.setdefault(client_id, []).append(chat_id)
        if manager_id is not None and manager_id in manager_ids:
            found.managers.setdefault(manager_id, []).append(chat_id)
    return found
