"""Clients, managers, per-client event-type settings and Telegram links."""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import links
from storage.models import Client, ClientTypeSetting, Manager, TelegramLink
from storage.types import utcnow
from storage.upsert import dialect_of, insert_for, insert_of

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ClientRecord:
    id: str
    name: str
    phone: str | None
    manager_id: str | None
    category: str | None
    blocked: bool


@dataclass(frozen=True, slots=True)
class ManagerRecord:
    id: str
    name: str
    phone: str | None


_clients = Client.__table__
_managers = Manager.__table__
_CLIENT_COLUMNS = (
    _clients.c.id,
    _clients.c.name,
    _clients.c.phone,
    _clients.c.manager_id,
    _clients.c.category,
    _clients.c.blocked,
    _clients.c.created_at,
)
_MANAGER_COLUMNS = (_managers.c.id, _managers.c.name, _managers.c.phone, _managers.c.created_at)


async def upsert_manager(session: AsyncSession, values: Mapping[str, Any]) -> ManagerRecord:
    """Insert the manager or update the fields given in `values` (which holds `id`)."""
    row, _ = await _upsert(session, _managers, values)
    return ManagerRecord(id=row.id, name=row.name, phone=row.phone)


async def upsert_managers(
    session: AsyncSession, entries: Sequence[tuple[T, Mapping[str, Any]]]
) -> dict[T, ManagerRecord]:
    """`upsert_manager` for many (tag, values) entries, given in arrival order; each tag gets
    the row as its own values left it. See `_upsert_in_rounds` for the statements."""
    rows = await _upsert_in_rounds(session, _managers, entries)
    return {
        tag: ManagerRecord(id=row.id, name=row.name, phone=row.phone)
        for tag, (row, _) in rows.items()
    }


async def upsert_clients(
    session: AsyncSession, entries: Sequence[tuple[T, Mapping[str, Any]]]
) -> dict[T, tuple[ClientRecord, bool]]:
    """Insert each client or update the fields given, for many (tag, values) entries in
    arrival order; each tag gets (the row as its values left it, whether it was new)."""
    rows = await _upsert_in_rounds(session, _clients, entries)
    return {
        tag: (
            ClientRecord(
                id=row.id,
                name=row.name,
                phone=row.phone,
                manager_id=row.manager_id,
                category=row.category,
                blocked=row.blocked,
            ),
            created,
        )
        for tag, (row, created) in rows.items()
    }


async def _upsert_in_rounds(
    session: AsyncSession, table: Any, entries: Sequence[tuple[T, Mapping[str, Any]]]
) -> dict[T, tuple[Any, bool]]:
    """Upsert many cards with few statements, locking rows in id order.

    Round k holds the k-th entry of every id (an id's entries keep their arrival order), so
    no statement touches a row twice (which ON CONFLICT DO UPDATE refuses). A round whose
    entries all give the same columns is one multi-row statement with its rows in id order;
    otherwise its entries go one by one, in id order. Every round after the first touches
    only rows the first one locked, so concurrent batches lock in one global order.
    """
    rounds: list[list[tuple[T, Mapping[str, Any]]]] = []
    seen: dict[str, int] = {}
    for tag, values in sorted(entries, key=lambda entry: str(entry[1]["id"])):
        k = seen.get(values["id"], 0)
        seen[values["id"]] = k + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append((tag, values))
    results: dict[T, tuple[Any, bool]] = {}
    dialect = dialect_of(session)
    for round_ in rounds:
        column_sets = {tuple(sorted(values)) for _, values in round_}
        if len(column_sets) > 1:
            for tag, values in round_:
                results[tag] = await _upsert(session, table, values)
            continue
        now = utcnow()
        statement = _upsert_statement(dialect, table.name, column_sets.pop())
        result = await session.execute(
            statement,
            [{**values, "created_at": now, "updated_at": now} for _, values in round_],
        )
        by_id = {row.id: row for row in result}
        for tag, values in round_:
            row = by_id[values["id"]]
            results[tag] = (row, row.created_at == now)
    return results


async def _upsert(
    session: AsyncSession, table: Any, values: Mapping[str, Any]
) -> tuple[Any, bool]:
    """INSERT … ON CONFLICT (id) DO UPDATE of the columns in `values`; (row, inserted).

    One statement: an inserted row keeps `created_at` equal to this call's timestamp, an
    updated one keeps its older value, which tells the two apart on both dialects.
    """
    now = utcnow()
    statement = _upsert_statement(dialect_of(session), table.name, tuple(sorted(values)))
    row = (
        await session.execute(statement, {**values, "created_at": now, "updated_at": now})
    ).one()
    return row, row.created_at == now


@functools.lru_cache(maxsize=128)
def _upsert_statement(dialect: str, table_name: str, columns: tuple[str, ...]) -> Any:
    """Built once per dialect, table and set of given columns: the values come as
    parameters, so SQLAlchemy reuses the compiled statement for every event."""
    table = _clients if table_name == Client.__tablename__ else _managers
    statement = insert_of(dialect)(table)
    changed = {column: statement.excluded[column] for column in columns if column != "id"}
    return statement.on_conflict_do_update(
        index_elements=[table.c.id], set_={**changed, "updated_at": statement.excluded.updated_at}
    ).returning(*(_CLIENT_COLUMNS if table is _clients else _MANAGER_COLUMNS))


async def get_manager_records(
    session: AsyncSession, manager_ids: Collection[str]
) -> dict[str, ManagerRecord]:
    """The managers among `manager_ids` that exist, by id, in one query."""
    if not manager_ids:
        return {}
    result = await session.execute(
        select(*_MANAGER_COLUMNS).where(_managers.c.id.in_(set(manager_ids)))
    )
    return {row.id: ManagerRecord(id=row.id, name=row.name, phone=row.phone) for row in result}


async def init_client_type_settings(
    session: AsyncSession, client_ids: str | Collection[str], sends: Mapping[str, bool]
) -> None:
    """Fix new clients' «Отправлять уведомление» flags from the types' defaults.

    Materialised once, so a later change of `default_for_new_clients` leaves existing
    clients alone, as the seed describes.
    """
    ids = [client_ids] if isinstance(client_ids, str) else sorted(client_ids)
    if not sends or not ids:
        return
    now = utcnow()
    rows = [
        {"client_id": client_id, "event_type": code, "send": send, "updated_at": now}
        for client_id in ids
        for code, send in sends.items()
    ]
    # executemany with one statement built once, not a 16-row VALUES compiled every time
    await session.execute(_insert_type_settings(dialect_of(session)), rows)


@functools.lru_cache(maxsize=2)
def _insert_type_settings(dialect: str) -> Any:
    table = ClientTypeSetting.__table__
    return insert_of(dialect)(table).on_conflict_do_nothing(
        index_elements=[table.c.client_id, table.c.event_type]
    )


async def get_client_type_setting(
    session: AsyncSession, client_id: str, event_type: str
) -> ClientTypeSetting | None:
    return await session.get(ClientTypeSetting, (client_id, event_type))


async def get_type_overrides(
    session: AsyncSession, pairs: Collection[tuple[str, str]]
) -> dict[tuple[str, str], tuple[bool | None, str | None, str | None]]:
    """(send, template_client, template_manager) of each (client id, event type) pair that
    has a row, in one query."""
    if not pairs:
        return {}
    table = ClientTypeSetting.__table__
    result = await session.execute(
        select(
            table.c.client_id,
            table.c.event_type,
            table.c.send,
            table.c.template_client,
            table.c.template_manager,
        ).where(tuple_(table.c.client_id, table.c.event_type).in_(list(set(pairs))))
    )
    return {
        (row.client_id, row.event_type): (row.send, row.template_client, row.template_manager)
        for row in result
    }


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
    found = await links.usable_chats_many(
        session,
        client_ids=[client_id] if client_id is not None else [],
        manager_ids=[manager_id] if manager_id is not None else [],
    )
    if client_id is not None:
        return found.clients.get(client_id, [])
    return found.managers.get(manager_id, []) if manager_id is not None else []


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


async def update_client(session: AsyncSession, client_id: str, changes: Mapping[str, Any]) -> bool:
    """Set the given fields of an existing client; False when there is no such client."""
    return await _update_card(session, Client, client_id, changes)


async def _update_card(
    session: AsyncSession,
    model: type[Client] | type[Manager],
    card_id: str,
    changes: Mapping[str, Any],
) -> bool:
    result = await session.execute(
        update(model)
        .where(model.id == card_id)
        .values(**changes, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class ChatLinkRecord:
    """One Telegram chat linked to a client or manager, as the admin API shows it."""

    chat_id: int
    user_id: int | None
    stopped: bool
    blocked: bool
    linked_at: datetime
    updated_at: datetime


async def manager_chat_links(session: AsyncSession, manager_id: str) -> list[ChatLinkRecord]:
    """Every chat linked to the manager, usable or not, oldest link first."""
    table = TelegramLink.__table__
    result = await session.execute(
        select(
            table.c.chat_id,
            table.c.user_id,
            table.c.stopped,
            table.c.blocked,
            table.c.created_at,
            table.c.updated_at,
        )
        .where(table.c.manager_id == manager_id)
        .order_by(table.c.id)
    )
    return [
        ChatLinkRecord(
            chat_id=row.chat_id,
            user_id=row.user_id,
            stopped=bool(row.stopped),
            blocked=bool(row.blocked),
            linked_at=row.created_at,
            updated_at=row.updated_at,
        )
        for row in result
    ]


async def update_manager(
    session: AsyncSession, manager_id: str, changes: Mapping[str, Any]
) -> bool:
    """Set the given fields of an existing manager; False when there is no such manager."""
    return await _update_card(session, Manager, manager_id, changes)


async def save_manager(session: AsyncSession, values: Mapping[str, Any]) -> bool:
    """Insert the manager or set the fields given (`values` holds `id` and `name`); True
    when this inserted it. One statement, so two admins creating the same manager at once
    cannot collide."""
    _, created = await _upsert(session, _managers, values)
    return created


# --------------------------------------------------------------------------- lookups
# Small views of a card for the bot and the journal's front ends: who a phone, a chat or
# a Telegram user is, and names to show.

_links = TelegramLink.__table__


@dataclass(frozen=True, slots=True)
class ClientRef:
    id: str
    name: str
    manager_id: str | None


@dataclass(frozen=True, slots=True)
class ManagerRef:
    id: str
    name: str
    is_admin: bool


async def client_ref(session: AsyncSession, client_id: str) -> ClientRef | None:
    row = (
        await session.execute(
            select(_clients.c.id, _clients.c.name, _clients.c.manager_id).where(
                _clients.c.id == client_id
            )
        )
    ).first()
    return None if row is None else ClientRef(row.id, row.name, row.manager_id)


async def manager_ref(session: AsyncSession, manager_id: str) -> ManagerRef | None:
    row = (
        await session.execute(
            select(_managers.c.id, _managers.c.name, _managers.c.is_admin).where(
                _managers.c.id == manager_id
            )
        )
    ).first()
    return None if row is None else ManagerRef(row.id, row.name, bool(row.is_admin))


async def clients_by_phone(session: AsyncSession, phone: str) -> list[ClientRef]:
    result = await session.execute(
        select(_clients.c.id, _clients.c.name, _clients.c.manager_id)
        .where(_clients.c.phone == phone)
        .order_by(_clients.c.id)
    )
    return [ClientRef(row.id, row.name, row.manager_id) for row in result]


async def managers_by_phone(session: AsyncSession, phone: str) -> list[ManagerRef]:
    result = await session.execute(
        select(_managers.c.id, _managers.c.name, _managers.c.is_admin)
        .where(_managers.c.phone == phone)
        .order_by(_managers.c.id)
    )
    return [ManagerRef(row.id, row.name, bool(row.is_admin)) for row in result]


async def clients_of_chat(session: AsyncSession, chat_id: int) -> list[ClientRef]:
    """Clients linked to the chat, oldest link first."""
    result = await session.execute(
        select(_clients.c.id, _clients.c.name, _clients.c.manager_id)
        .join(_links, _links.c.client_id == _clients.c.id)
        .where(_links.c.chat_id == chat_id)
        .order_by(_links.c.id)
    )
    return [ClientRef(row.id, row.name, row.manager_id) for row in result]


async def managers_of_user(session: AsyncSession, user_id: int) -> list[ManagerRef]:
    """Managers the Telegram user is linked to (admins first)."""
    result = await session.execute(
        select(_managers.c.id, _managers.c.name, _managers.c.is_admin)
        .join(_links, _links.c.manager_id == _managers.c.id)
        .where(_links.c.user_id == user_id)
        .order_by(_managers.c.is_admin.desc(), _links.c.id)
    )
    seen: dict[str, ManagerRef] = {}
    for row in result:
        seen.setdefault(row.id, ManagerRef(row.id, row.name, bool(row.is_admin)))
    return list(seen.values())


async def admin_ids(session: AsyncSession) -> list[str]:
    result = await session.execute(
        select(_managers.c.id).where(_managers.c.is_admin.is_(True)).order_by(_managers.c.id)
    )
    return [row.id for row in result]


async def client_names(session: AsyncSession, client_ids: Collection[str]) -> dict[str, str]:
    ids = {client_id for client_id in client_ids if client_id}
    if not ids:
        return {}
    result = await session.execute(
        select(_clients.c.id, _clients.c.name).where(_clients.c.id.in_(ids))
    )
    return {row.id: row.name for row in result}
