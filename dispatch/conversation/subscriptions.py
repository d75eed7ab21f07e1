"""Who a Telegram user is to Vestnik, and how a chat becomes theirs.

- A shared contact links the chat to every client (and manager) with that phone, but only
  the sender's own contact counts (`contact.user_id == from.id`); a phone that matches
  nobody is recorded as an unmatched contact for the managers.
- A deep-link token (`t.me/<bot>?start=<token>`, from the admin API) links at once: it is
  one-time (bound to the first Telegram user who uses it; that user may use it again),
  expires after `LINK_TOKEN_TTL`, and is `secrets.token_urlsafe` text, which fits
  Telegram's `/start` payload rule (at most 64 characters of `[A-Za-z0-9_-]`).
- `/stop` stops notifications to the chat (the reserve route applies), `/start` resumes;
  Telegram's `my_chat_member` updates mark the chat blocked or unblocked.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from dispatch.phones import InvalidPhone, mask_phone, normalise_phone
from storage import directory, inbox, links
from storage.database import Database
from storage.directory import ClientRef, ManagerRef
from storage.links import TokenState
from storage.types import utcnow

logger = logging.getLogger(__name__)

LINK_TOKEN_TTL = timedelta(days=7)
TOKEN_BYTES = 24
"""32 characters of token_urlsafe text: well inside Telegram's 64."""
DEEP_LINK_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class Identity:
    """What one Telegram update's sender and chat are linked to."""

    user_id: int | None
    chat_id: int | None
    clients: Sequence[ClientRef] = ()
    """Clients linked to this chat."""
    managers: Sequence[ManagerRef] = ()
    """Managers linked to this Telegram user (admins first)."""

    @property
    def manager(self) -> ManagerRef | None:
        return self.managers[0] if self.managers else None

    @property
    def is_manager(self) -> bool:
        return bool(self.managers)

    @property
    def is_admin(self) -> bool:
        return any(manager.is_admin for manager in self.managers)

    @property
    def client(self) -> ClientRef | None:
        return self.clients[0] if self.clients else None

    @property
    def manager_ids(self) -> list[str]:
        return [manager.id for manager in self.managers]

    @property
    def actor(self) -> str:
        """The journal's actor for what this user does: `manager:<id>`."""
        manager = self.manager
        return f"manager:{manager.id}" if manager is not None else f"telegram:{self.user_id}"

    def may_act_on(self, responsible_manager_id: str | None) -> bool:
        """Admins act on every notification; a manager on those of their own clients."""
        if self.is_admin:
            return True
        return responsible_manager_id is not None and responsible_manager_id in self.manager_ids


async def identify(db: Database, *, user_id: int | None, chat_id: int | None) -> Identity:
    async with db.sessions() as session:
        clients = await directory.clients_of_chat(session, chat_id) if chat_id else []
        managers = await directory.managers_of_user(session, user_id) if user_id else []
    return Identity(user_id=user_id, chat_id=chat_id, clients=clients, managers=managers)


@dataclass(frozen=True, slots=True)
class Linked:
    """The clients and managers a chat was linked to by one contact or token."""

    clients: Sequence[ClientRef] = field(default_factory=tuple)
    managers: Sequence[ManagerRef] = field(default_factory=tuple)

    def __bool__(self) -> bool:
        return bool(self.clients or self.managers)


class ContactOutcome(StrEnum):
    LINKED = "linked"
    NOT_OWN = "not_own"
    """Someone else's contact: refused."""
    INVALID = "invalid"
    UNMATCHED = "unmatched"


@dataclass(frozen=True, slots=True)
class ContactResult:
    outcome: ContactOutcome
    phone: str | None = None
    linked: Linked = field(default_factory=Linked)


def contact_phone(raw: str) -> str:
    """Telegram sends `79161234567` (no plus) or `+79161234567`; both are international."""
    text = raw.strip()
    digits = text.lstrip("+")
    if digits.isdigit() and not text.startswith("+"):
        text = "+" + digits
    return normalise_phone(text)


async def link_by_contact(
    db: Database,
    *,
    chat_id: int,
    from_user_id: int,
    contact_user_id: int | None,
    phone: str,
    name: str | None,
) -> ContactResult:
    """Link the chat to everyone with the contact's phone, if it is the sender's own."""
    if contact_user_id is None or contact_user_id != from_user_id:
        logger.info("chat %s shared a contact that is not the sender's own: refused", chat_id)
        return ContactResult(ContactOutcome.NOT_OWN)
    try:
        e164 = contact_phone(phone)
    except InvalidPhone:
        logger.info("chat %s shared an unusable phone number", chat_id)
        return ContactResult(ContactOutcome.INVALID)
    async with db.transaction() as session:
        clients = await directory.clients_by_phone(session, e164)
        managers = await directory.managers_by_phone(session, e164)
        if not clients and not managers:
            await inbox.record_unmatched_contact(
                session,
                chat_id=chat_id,
                user_id=from_user_id,
                phone=e164,
                name=name,
                now=utcnow(),
            )
            logger.info("chat %s: phone %s matches nobody (recorded)", chat_id, mask_phone(e164))
            return ContactResult(ContactOutcome.UNMATCHED, e164)
        for client in clients:
            await directory.link_chat(
                session, chat_id=chat_id, user_id=from_user_id, client_id=client.id
            )
        for manager in managers:
            await directory.link_chat(
                session, chat_id=chat_id, user_id=from_user_id, manager_id=manager.id
            )
    logger.info(
        "chat %s linked by contact %s to %d client(s) and %d manager(s)",
        chat_id,
        mask_phone(e164),
        len(clients),
        len(managers),
    )
    return ContactResult(ContactOutcome.LINKED, e164, Linked(tuple(clients), tuple(managers)))


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_at: datetime


async def issue_link_token(
    db: Database,
    *,
    client_id: str | None = None,
    manager_id: str | None = None,
    ttl: timedelta = LINK_TOKEN_TTL,
) -> IssuedToken | None:
    """A new one-time deep-link token for an existing client or manager; None if missing."""
    if (client_id is None) == (manager_id is None):
        raise ValueError("a link token is for exactly one client or one manager")
    now = utcnow()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    async with db.transaction() as session:
        if client_id is not None and await directory.client_ref(session, client_id) is None:
            return None
        if manager_id is not None and await directory.manager_ref(session, manager_id) is None:
            return None
        await links.insert_link_token(
            session,
            token=token,
            client_id=client_id,
            manager_id=manager_id,
            now=now,
            expires_at=now + ttl,
        )
    return IssuedToken(token, now + ttl)


@dataclass(frozen=True, slots=True)
class TokenResult:
    state: TokenState
    linked: Linked = field(default_factory=Linked)


async def link_by_token(db: Database, payload: str, *, chat_id: int, user_id: int) -> TokenResult:
    """Link the chat by a deep-link payload; refusals say why (unknown, expired, taken)."""
    if not DEEP_LINK_PAYLOAD.fullmatch(payload):
        return TokenResult(TokenState.UNKNOWN)
    async with db.transaction() as session:
        claim = await links.claim_link_token(session, payload, user_id=user_id, now=utcnow())
        if claim.state is not TokenState.CLAIMED:
            logger.info("chat %s: deep link refused (%s)", chat_id, claim.state.value)
            return TokenResult(claim.state)
        clients: list[ClientRef] = []
        managers: list[ManagerRef] = []
        if claim.client_id is not None:
            client = await directory.client_ref(session, claim.client_id)
            if client is not None:
                clients.append(client)
                await directory.link_chat(
                    session, chat_id=chat_id, user_id=user_id, client_id=client.id
                )
        if claim.manager_id is not None:
            manager = await directory.manager_ref(session, claim.manager_id)
            if manager is not None:
                managers.append(manager)
                await directory.link_chat(
                    session, chat_id=chat_id, user_id=user_id, manager_id=manager.id
                )
    if not clients and not managers:
        return TokenResult(TokenState.UNKNOWN)
    logger.info("chat %s linked by deep link", chat_id)
    return TokenResult(TokenState.CLAIMED, Linked(tuple(clients), tuple(managers)))


class ChatState(StrEnum):
    NOT_LINKED = "not_linked"
    ACTIVE = "active"
    RESUMED = "resumed"


async def resume(db: Database, chat_id: int) -> ChatState:
    """`/start` in a linked chat: notifications flow again (stop and block cleared)."""
    async with db.transaction() as session:
        if not await links.chat_is_linked(session, chat_id):
            return ChatState.NOT_LINKED
        was_stopped = await links.chat_is_stopped(session, chat_id)
        await directory.set_chat_flags(session, chat_id, stopped=False, blocked=False)
    if was_stopped:
        logger.info("chat %s resumed notifications", chat_id)
        return ChatState.RESUMED
    return ChatState.ACTIVE


async def stop(db: Database, chat_id: int) -> bool:
    """`/stop`: no Telegram notifications to this chat until `/start`; False if not linked."""
    async with db.transaction() as session:
        changed = await directory.set_chat_flags(session, chat_id, stopped=True)
    if changed:
        logger.info("chat %s stopped notifications", chat_id)
    return bool(changed)


async def set_blocked(db: Database, chat_id: int, *, blocked: bool) -> int:
    """The user blocked (or unblocked) the bot; returns the links changed."""
    async with db.transaction() as session:
        changed = await directory.set_chat_flags(session, chat_id, blocked=blocked)
    if changed:
        logger.info("chat %s %s the bot", chat_id, "blocked" if blocked else "unblocked")
    return changed
