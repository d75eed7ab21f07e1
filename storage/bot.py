"""SQL for the Telegram bot: deep-link tokens, handled update ids, who a chat belongs to,
the client chat, unmatched contacts and the managers' inline-button prompts."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import cast

from sqlalchemy import Table, delete, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    ChatMessage,
    Client,
    LinkToken,
    Manager,
    ManagerPrompt,
    Notification,
    TelegramLink,
    TelegramUpdate,
    UnmatchedContact,
)
from storage.types import utcnow
from storage.upsert import insert_for

_links = cast(Table, TelegramLink.__table__)
_clients = cast(Table, Client.__table__)
_managers = cast(Table, Manager.__table__)
_tokens = cast(Table, LinkToken.__table__)
_updates = cast(Table, TelegramUpdate.__table__)
_messages = cast(Table, ChatMessage.__table__)
_prompts = cast(Table, ManagerPrompt.__table__)
_unmatched = cast(Table, UnmatchedContact.__table__)


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


# --------------------------------------------------------------------------- updates


async def remember_update(session: AsyncSession, update_id: int, now: datetime) -> bool:
    """Record a handled update id; False when it was recorded before (a redelivery)."""
    statement = (
        insert_for(session, _updates)
        .values(update_id=update_id, received_at=now)
        .on_conflict_do_nothing(index_elements=[_updates.c.update_id])
        .returning(_updates.c.update_id)
    )
    return (await session.execute(statement)).first() is not None


async def forget_update(session: AsyncSession, update_id: int) -> None:
    """Let a redelivery of `update_id` be handled (its first handling failed)."""
    await session.execute(delete(_updates).where(_updates.c.update_id == update_id))


async def prune_updates(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(delete(_updates).where(_updates.c.received_at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- link tokens


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


# --------------------------------------------------------------------------- directory


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


async def usable_manager_chats(session: AsyncSession, manager_ids: Collection[str]) -> list[int]:
    """Chats of these managers that are neither stopped nor blocked, without repeats."""
    if not manager_ids:
        return []
    result = await session.execute(
        select(_links.c.chat_id)
        .where(
            _links.c.manager_id.in_(list(manager_ids)),
            _links.c.stopped.is_(False),
            _links.c.blocked.is_(False),
        )
        .order_by(_links.c.id)
    )
    return list(dict.fromkeys(row.chat_id for row in result))


async def admin_ids(session: AsyncSession) -> list[str]:
    result = await session.execute(
        select(_managers.c.id).where(_managers.c.is_admin.is_(True)).order_by(_managers.c.id)
    )
    return [row.id for row in result]


@dataclass(frozen=True, slots=True)
class UnmatchedContactRecord:
    id: int
    chat_id: int
    user_id: int | None
    phone: str
    name: str | None
    created_at: datetime


async def list_unmatched_contacts(
    session: AsyncSession, *, before_id: int | None, limit: int
) -> list[UnmatchedContactRecord]:
    """Newest first (by id, which only grows); `before_id` continues a previous page."""
    statement = select(
        _unmatched.c.id,
        _unmatched.c.chat_id,
        _unmatched.c.user_id,
        _unmatched.c.phone,
        _unmatched.c.name,
        _unmatched.c.created_at,
    )
    if before_id is not None:
        statement = statement.where(_unmatched.c.id < before_id)
    result = await session.execute(statement.order_by(_unmatched.c.id.desc()).limit(limit))
    return [
        UnmatchedContactRecord(
            id=row.id,
            chat_id=row.chat_id,
            user_id=row.user_id,
            phone=row.phone,
            name=row.name,
            created_at=row.created_at,
        )
        for row in result
    ]


async def record_unmatched_contact(
    session: AsyncSession,
    *,
    chat_id: int,
    user_id: int | None,
    phone: str,
    name: str | None,
    now: datetime,
) -> None:
    await session.execute(
        insert(_unmatched).values(
            chat_id=chat_id, user_id=user_id, phone=phone, name=name, created_at=now
        )
    )


# --------------------------------------------------------------------------- client chat


async def add_chat_message(
    session: AsyncSession,
    *,
    client_id: str | None,
    manager_id: str | None,
    direction: str,
    chat_id: int,
    telegram_message_id: int | None,
    relayed_chat_id: int | None,
    relayed_message_id: int | None,
    text: str | None,
) -> None:
    await session.execute(
        insert(_messages).values(
            client_id=client_id,
            manager_id=manager_id,
            direction=direction,
            chat_id=chat_id,
            telegram_message_id=telegram_message_id,
            relayed_chat_id=relayed_chat_id,
            relayed_message_id=relayed_message_id,
            text=text,
            created_at=utcnow(),
        )
    )


@dataclass(frozen=True, slots=True)
class RelayedMessage:
    client_id: str | None
    client_chat_id: int
    """The chat the client wrote from: where an answer goes."""


async def find_relayed_client_message(
    session: AsyncSession, *, relayed_chat_id: int, relayed_message_id: int
) -> RelayedMessage | None:
    """The client message whose relayed copy is `relayed_message_id` in a manager's chat."""
    row = (
        await session.execute(
            select(_messages.c.client_id, _messages.c.chat_id)
            .where(
                _messages.c.relayed_chat_id == relayed_chat_id,
                _messages.c.relayed_message_id == relayed_message_id,
                _messages.c.direction == "in",
            )
            .limit(1)
        )
    ).first()
    return None if row is None else RelayedMessage(row.client_id, row.chat_id)


# --------------------------------------------------------------------------- manager prompts


async def add_prompt(
    session: AsyncSession, *, notification_id: int, chat_id: int, message_id: int
) -> None:
    now = utcnow()
    await session.execute(
        insert_for(session, _prompts)
        .values(
            notification_id=notification_id,
            chat_id=chat_id,
            message_id=message_id,
            created_at=now,
        )
        .on_conflict_do_update(
            index_elements=[_prompts.c.notification_id, _prompts.c.chat_id],
            set_={"message_id": message_id, "created_at": now, "answered_at": None},
        )
    )


async def open_prompts(session: AsyncSession, notification_id: int) -> list[tuple[int, int]]:
    """(chat_id, message_id) of the prompts about a notification not yet answered."""
    result = await session.execute(
        select(_prompts.c.chat_id, _prompts.c.message_id).where(
            _prompts.c.notification_id == notification_id, _prompts.c.answered_at.is_(None)
        )
    )
    return [(row.chat_id, row.message_id) for row in result]


async def unprompted(
    session: AsyncSession,
    *,
    statuses: Collection[str],
    created_after: datetime,
    created_before: datetime,
    limit: int,
) -> list[int]:
    """Ids of notifications in `statuses`, created in the window, about which no prompt was
    ever sent (oldest first)."""
    notifications = cast(Table, Notification.__table__)
    result = await session.execute(
        select(notifications.c.id)
        .where(
            notifications.c.status.in_(list(statuses)),
            notifications.c.created_at > created_after,
            notifications.c.created_at < created_before,
            ~exists().where(_prompts.c.notification_id == notifications.c.id),
        )
        .order_by(notifications.c.id)
        .limit(limit)
    )
    return [row.id for row in result]


async def close_prompts(session: AsyncSession, notification_id: int, now: datetime) -> None:
    await session.execute(
        update(_prompts)
        .where(_prompts.c.notification_id == notification_id, _prompts.c.answered_at.is_(None))
        .values(answered_at=now)
    )


# --------------------------------------------------------------------------- journal


async def recent_notifications(
    session: AsyncSession,
    *,
    status: str | None,
    manager_ids: Sequence[str] | None,
    limit: int,
) -> list[Notification]:
    """Newest first; `manager_ids` None means every notification (an admin's view)."""
    statement = select(Notification).order_by(Notification.id.desc()).limit(limit)
    if status is not None:
        statement = statement.where(Notification.status == status)
    if manager_ids is not None:
        statement = statement.where(Notification.manager_id.in_(list(manager_ids)))
    return list((await session.execute(statement)).scalars())


async def client_names(session: AsyncSession, client_ids: Collection[str]) -> dict[str, str]:
    ids = {client_id for client_id in client_ids if client_id}
    if not ids:
        return {}
    result = await session.execute(
        select(_clients.c.id, _clients.c.name).where(_clients.c.id.in_(ids))
    )
    return {row.id: row.name for row in result}
