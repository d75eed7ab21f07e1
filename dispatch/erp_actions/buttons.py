"""The ERP's buttons under a client's Telegram message, and what a press does.

Callback data is `ea:<notification id>:<action index>:<tag>`, where the tag is the first
80 bits of HMAC-SHA256 over the notification id, the index and the action's id, keyed by
a key derived from `erp.callback_secret`. Telegram hands callback data back as the client
sends it, so a press is believed only when its tag is ours, the notification still has that
action, and the press comes from a chat linked to the notification's client.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import TypeAdapter, ValidationError

from dispatch.intake.schemas import ActionIn
from storage.actions import presses
from storage.database import Database

logger = logging.getLogger(__name__)

PREFIX = "ea:"
_TAG_HEX = 20
_DATA_RE = re.compile(rf"ea:([1-9][0-9]{{0,18}}):([0-9]):([0-9a-f]{{{_TAG_HEX}}})")
_ACTIONS = TypeAdapter(list[ActionIn])

Button = tuple[str, str]
"""(label, callback data) of one inline button."""


class PressOutcome(StrEnum):
    ACCEPTED = "accepted"
    AGAIN = "again"
    """This button was pressed before: stored once, delivered once."""
    INVALID = "invalid"
    """Not a button we made for this chat (forged, stale, another client's)."""


def parse_actions(raw: Any) -> list[ActionIn]:
    """The stored event's actions; none when they do not validate (never a crash)."""
    if not raw:
        return []
    try:
        return _ACTIONS.validate_python(raw)
    except ValidationError:
        return []


class ErpButtons:
    """Makes the buttons and takes the presses; `on_pressed` wakes the outbox."""

    def __init__(self, callback_secret: str, *, on_pressed: Callable[[], None] | None = None):
        # A key of its own, so callback data never exposes a MAC under the POST's secret.
        self._key = hmac.new(
            callback_secret.encode(), b"vestnik erp buttons", hashlib.sha256
        ).digest()
        self._on_pressed = on_pressed

    def subscribe(self, on_pressed: Callable[[], None]) -> None:
        self._on_pressed = on_pressed

    def _tag(self, notification_id: int, index: int, action_id: str) -> str:
        message = f"{notification_id}:{index}:{action_id}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:_TAG_HEX]

    def callback_data(self, notification_id: int, index: int, action_id: str) -> str:
        return f"{PREFIX}{notification_id}:{index}:{self._tag(notification_id, index, action_id)}"

    def buttons(self, notification_id: int, raw_actions: Any) -> list[Button]:
        return [
            (action.label, self.callback_data(notification_id, index, action.id))
            for index, action in enumerate(parse_actions(raw_actions))
        ]

    def buttons_of(self, actions: Mapping[int, Any]) -> dict[int, list[Button]]:
        return {nid: self.buttons(nid, raw) for nid, raw in actions.items()}

    async def press(
        self,
        db: Database,
        data: str,
        *,
        chat_id: int | None,
        user_id: int,
        now: datetime,
    ) -> PressOutcome:
        """Store a press for the outbox (once per notification and action)."""
        match = _DATA_RE.fullmatch(data)
        if match is None or chat_id is None:
            return PressOutcome.INVALID
        notification_id, index, tag = int(match[1]), int(match[2]), match[3]
        async with db.transaction() as session:
            source = await presses.button_source(session, notification_id)
            actions = parse_actions(source.actions) if source is not None else []
            if source is None or source.client_id is None or index >= len(actions):
                return PressOutcome.INVALID
            action = actions[index]
            if not hmac.compare_digest(tag, self._tag(notification_id, index, action.id)):
                return PressOutcome.INVALID
            if not await presses.chat_of_client(session, chat_id, source.client_id):
                return PressOutcome.INVALID
            body = {
                "event_id": source.event_id,
                "action": action.id,
                "client_id": source.client_id,
                "document": source.document if source.document is not None else {},
                "pressed_at": now.isoformat(),
            }
            new = await presses.record(
                session,
                notification_id=notification_id,
                action=action.id,
                telegram_user_id=user_id,
                pressed_at=now,
                body=body,
            )
        if not new:
            return PressOutcome.AGAIN
        logger.info(
            "erp button %r of notification %s pressed by telegram user %s",
            action.id,
            notification_id,
            user_id,
        )
        if self._on_pressed is not None:
            self._on_pressed()
        return PressOutcome.ACCEPTED
