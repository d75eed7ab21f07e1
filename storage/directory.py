"""Clients, managers, per-client event-type settings and Telegram links."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Client, ClientTypeSetting, Manager, TelegramLink
from storage.types import utcnow
from storage.upsert import insert_for


async def upsert_manager(session: AsyncSession, values: Mapping[str, Any]) -> None:
    """Insert the manager or update the fields given in `values` (which holds `id`)."""
    now = utcnow()
    changes = {key: value for key, value in values.items() if key != "id"}
    statement = insert_for(session, Manager).values(**values, created_at=now, updated_at=now)
    statement = statement.on_conflict_do_update(
        index_elements=[Manager.id], set_={**changes, "updated_at": now}
    )
    await session.execute(statement)


async def upsert_client(session: AsyncSession, values: Mapping[str, Any]) -> bool:
    """Insert the client or update the fields given; True when the client is new."""
    now = utcnow()
    inserted = (
        await session.execute(
            insert_for(session, Client)
            .values(**values, created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=[Client.id])
            .returning(Client.id)
        )
    ).scalar_one_or_none()
    if inserted is not None:
        return True
    changes = {key: value for key, value in values.items() if key != "id"}
    if changes:
        await session.execute(
            update(Client).where(Client.id == values["id"]).values(**changes, updated_at=now)
        )
    return False


async def init_client_type_settings(
    session: AsyncSession, client_id: str, sends: Mapping[str, bool]
) -> None:
    """Fix a new client's «Отправлять уведомление» flags from the types' defaults.

    Materialised once, so a later change of `default_for_new_clients` leaves existing
    clients alone, as the seed describes.
    """
    if not sends:
        return
    now = utcnow()
    rows = [
        {"client_id": client_id, "event_type": code, "send": send, "updated_at": now}
        for code, send in sends.items()
    ]
    await session.execute(
        insert_for(session, ClientTypeSetting)
        .values(rows)
        .on_conflict_do_nothing(
            index_elements=[ClientTypeSetting.client_id, ClientTypeSetting.event_type]
        )
    )


async def get_client_type_setting(
    session: AsyncSession, client_id: str, event_type: str
) -> ClientTypeSetting | None:
    return await session.get(ClientTypeSetting, (client_id, event_type))


async def list_client_type_settings(
    session: AsyncSession, client_id: str
) -> list[ClientTypeSetting]:
    result = await session.execute(
        select(ClientTypeSetting)
        .where(ClientTypeSetting.client_id == client_id)
        .order_by(ClientTypeSetting.event_type)
    )
    return list(result.scalars())


async def put_client_type_setting(
    session: AsyncSession, client_id: str, event_type: str, values: Mapping[str, Any]
) -> None:
    """Set the given fields of one (client, type) override, creating it when missing."""
    now = utcnow()
    await session.execute(
        insert_for(session, ClientTypeSetting)
        .values(client_id=client_id, event_type=event_type, updated_at=now, **values)
        .on_conflict_do_update(
            index_elements=[ClientTypeSetting.client_id, ClientTypeSetting.event_type],
            set_={**values, "updated_at": now},
        )
    )


async def get_client(session: AsyncSession, client_id: str) -> Client | None:
    return await session.get(Client, client_id)


async def get_manager(session: AsyncSession, manager_id: str) -> Manager | None:
    return await session.get(Manager, manager_id)


async def active_chat_ids(
    session: AsyncSession, *, client_id: str | None = None, manager_id: str | None = None
) -> list[int]:
    """Chats that may receive notifications: linked, not stopped, not blocked."""
    statement = select(TelegramLink.chat_id).where(
        TelegramLink.stopped.is_(False), TelegramLink.blocked.is_(False)
    )
    if client_id is not None:
        statement = statement.where(TelegramLink.client_id == client_id)
    elif manager_id is not None:
        statement = statement.where(TelegramLink.manager_id == manager_id)
    else:
        return []
    result = await session.execute(statement.order_by(TelegramLink.id))
    return list(result.scalars())


async def link_chat(
    session: AsyncSession,
    *,
    chat_id: int,
    user_id: int | None,
    client_id: str | None = None,
    manager_id: str | None = None,
) -> None:
    """Link a chat to a client or manager (idempotent; a relink clears stop and block)."""
    now = utcnow()
    key = TelegramLink.client_id if client_id is not None else TelegramLink.manager_id
    await session.execute(
        insert_for(session, TelegramLink)
        .values(
            chat_id=chat_id,
            user_id=user_id,
            client_id=client_id,
            manager_id=manager_id,
            stopped=False,
            blocked=False,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_update(
            index_elements=[TelegramLink.chat_id, key],
            set_={"stopped": False, "blocked": False, "user_id": user_id, "updated_at": now},
        )
    )


async def set_chat_flags(session: AsyncSession, chat_id: int, **flags: bool) -> int:
    """Set `stopped` / `blocked` on every link of a chat; returns the rows changed."""
    result = await session.execute(
        update(TelegramLink)
        .where(TelegramLink.chat_id == chat_id)
        .values(**flags, updated_at=utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
