"""The living order card (CONTRACT §9, `notify.telegram_cards`): a client's Telegram
messages about one document are one message, edited as the document moves on.

The card is rendered at delivery time from every stored event about the document for the
client (`templates/events/card.client_telegram.html.j2`), so it shows the state as of the
send, whatever order the events were claimed in. A card Telegram will not let us edit any
more (deleted by the client, older than the edit window) is replaced by a new message,
which becomes the current one. SMS is not concerned: one message per event there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from dispatch.catalogue import EVENT_TYPES, TEMPLATE_FOLDER
from dispatch.config import NotifySettings
from dispatch.delivery.channels.outcome import Outcome, OutcomeKind
from dispatch.intake.context import event_context
from dispatch.render.renderer import Renderer, RenderError
from storage.cards.cards import (
    CardKey,
    CardMessage,
    DocumentStep,
    cards_of,
    document_steps,
    key_of_notification,
    save_cards,
)
from storage.database import Database
from storage.queue import ClaimedNotification
from storage.types import utcnow

logger = logging.getLogger(__name__)

CARD_TEMPLATE = f"{TEMPLATE_FOLDER}/card.client_telegram.html.j2"
EDIT_WINDOW = timedelta(hours=48)
"""Bots may not edit their messages after this; an older card is replaced, not edited."""

# Telegram's answers for a card that cannot be edited any more (deleted, too old).
_GONE = ("message to edit not found", "message can't be edited")


class CardChannel(Protocol):
    async def send(self, chat_id: int, text: str, *, html: bool = False) -> Outcome: ...

    async def edit(
        self, chat_id: int, message_id: int, text: str, *, html: bool = False
    ) -> Outcome: ...


@dataclass(slots=True)
class CardDraft:
    """The card's text for one attempt, and what became of it in each chat."""

    key: CardKey
    text: str
    current: Mapping[int, CardMessage]
    new: list[CardMessage] = field(default_factory=list)

    async def deliver(self, telegram: CardChannel, chat_id: int) -> Outcome:
        """Edit the chat's card, or send a new one when there is none or it is gone."""
        now = utcnow()
        card = self.current.get(chat_id)
        replaced = ""
        if card is not None and now - card.sent_at < EDIT_WINDOW:
            outcome = await telegram.edit(chat_id, card.message_id, self.text, html=True)
            if outcome.kind is OutcomeKind.SENT:
                return Outcome.sent(
                    str(card.message_id),
                    reason=f"edited the order card (message {card.message_id})",
                )
            if not any(marker in outcome.reason.lower() for marker in _GONE):
                return outcome
            replaced = f"the order card (message {card.message_id}) could not be edited: "
            replaced += outcome.reason
        elif card is not None:
            replaced = f"the order card (message {card.message_id}) is older than 48 h"
        outcome = await telegram.send(chat_id, self.text, html=True)
        if outcome.kind is not OutcomeKind.SENT or not outcome.provider_message_id:
            return outcome
        message_id = int(outcome.provider_message_id)
        self.new.append(CardMessage(chat_id, message_id, now))
        reason = f"sent a new order card (message {message_id})"
        return Outcome.sent(
            outcome.provider_message_id, reason=f"{reason}; {replaced}" if replaced else reason
        )


def _step_time(step: DocumentStep) -> datetime:
    # The ERP's own wording of the time keeps its offset: the client's local clock.
    written = step.payload.get("occurred_at")
    if isinstance(written, str):
        try:
            return datetime.fromisoformat(written)
        except ValueError:
            pass
    return step.occurred_at or step.received_at


def card_context(steps: Sequence[DocumentStep], notify: NotifySettings) -> dict[str, Any]:
    """The latest event's context (its `document` is the current state) and `steps`."""
    latest = steps[-1]
    payload = latest.payload
    context = event_context(
        event_id=str(payload.get("event_id", "")),
        event_type=latest.event_type,
        occurred_at=_step_time(latest),
        client=payload.get("client") or {},
        manager=payload.get("manager"),
        document=payload.get("document") or {},
        notify=notify,
    )
    context["steps"] = [
        {
            "type": step.event_type,
            "title": EVENT_TYPES[step.event_type].title
            if step.event_type in EVENT_TYPES
            else step.event_type,
            "at": _step_time(step).strftime("%d.%m.%Y %H:%M"),
            "document": step.payload.get("document") or {},
        }
        for step in steps
    ]
    return context


class TelegramCards:
    """Drafts a client's card for a delivery attempt and keeps the current card messages.

    Attempts for one card run one at a time in this process, so that two events about the
    same order claimed together edit one message instead of sending two."""

    def __init__(self, db: Database, renderer: Renderer) -> None:
        self._db = db
        self._renderer = renderer
        self._locks: dict[CardKey, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def draft(
        self, item: ClaimedNotification, notify: NotifySettings
    ) -> AsyncIterator[CardDraft | None]:
        """The card to deliver for `item`, or None when it goes as a message of its own (not
        a client's, no document, the card does not render). On exit the new card messages
        become current."""
        key = None
        if item.recipient == "client" and item.client_id:
            async with self._db.sessions() as session:
                key = await key_of_notification(session, item.id)
        if key is None:
            yield None
            return
        async with self._lock(key):
            draft = await self._read(key, notify)
            try:
                yield draft
            finally:
                if draft is not None and draft.new:
                    async with self._db.transaction() as session:
                        await save_cards(session, key, draft.new)

    async def _read(self, key: CardKey, notify: NotifySettings) -> CardDraft | None:
        async with self._db.sessions() as session:
            steps = await document_steps(session, key)
            current = await cards_of(session, key)
        if not steps:
            return None
        try:
            text = self._renderer.render(CARD_TEMPLATE, card_context(steps, notify))
        except RenderError as exc:
            logger.warning(
                "order card %s %s not rendered, sent as it is: %s", key.kind, key.number, exc
            )
            return None
        return CardDraft(key, text, current)

    @asynccontextmanager
    async def _lock(self, key: CardKey) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
