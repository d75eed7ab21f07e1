"""What the fake phones and Telegram chats received: the sandbox's memory.

The two fakes write here and the page reads it. It lives in memory only and keeps the last
`MAX_LINES` lines (a sandbox left running for days must not grow); the journal in the
database keeps everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from dispatch.render.segments import Segmentation

Channel = Literal["sms", "telegram"]

MAX_LINES = 500
UNKNOWN_NAME = "Гость"


@dataclass(frozen=True, slots=True)
class Button:
    """A button under a message; only inline buttons with callback data can be pressed."""

    text: str
    callback_data: str | None = None


@dataclass(slots=True)
class Line:
    """One message in a phone's inbox or in a Telegram chat."""

    seq: int
    channel: Channel
    to: str
    """The phone (E.164) for SMS, the chat id for Telegram."""
    text: str
    at: datetime
    notification_id: int | None = None
    from_user: bool = False
    """A fake user's own message to the bot (Telegram only); everything else was received."""
    sender: str | None = None
    encoding: str | None = None
    segments: int = 0
    cost: Decimal = Decimal(0)
    chat_id: int | None = None
    message_id: int | None = None
    buttons: tuple[tuple[Button, ...], ...] = ()
    edited: bool = False
    answer: str | None = None
    """What the bot answered to the last press of one of this message's buttons."""


@dataclass(frozen=True, slots=True)
class FakeUser:
    """The Telegram account of a fake client or manager: its private chat has its id.

    The id is the phone's digits, so the same phone is the same account in every sandbox
    run: a chat linked in an earlier run (the database keeps links) is still its chat.
    """

    phone: str
    name: str

    @property
    def user_id(self) -> int:
        return int(self.phone.lstrip("+"))


class Inbox:
    """The lines of every fake phone and chat, oldest first, and the fake users."""

    def __init__(self, max_lines: int = MAX_LINES) -> None:
        self.started_at = datetime.now(UTC)
        self._lines: deque[Line] = deque(maxlen=max_lines)
        self._seq = itertools.count(1)
        self._users: dict[str, FakeUser] = {}
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ writing

    def add_sms(
        self,
        *,
        phone: str,
        text: str,
        sender: str | None,
        notification_id: int | None,
        segmentation: Segmentation,
        cost: Decimal,
    ) -> Line:
        line = Line(
            seq=next(self._seq),
            channel="sms",
            to=phone,
            text=text,
            at=datetime.now(UTC),
            notification_id=notification_id,
            sender=sender,
            encoding=segmentation.encoding,
            segments=segmentation.segments,
            cost=cost,
        )
        return self._add(line)

    def add_telegram(
        self,
        *,
        chat_id: int,
        message_id: int,
        text: str,
        buttons: tuple[tuple[Button, ...], ...] = (),
        from_user: bool = False,
    ) -> Line:
        line = Line(
            seq=next(self._seq),
            channel="telegram",
            to=str(chat_id),
            text=text,
            at=datetime.now(UTC),
            from_user=from_user,
            chat_id=chat_id,
            message_id=message_id,
            buttons=buttons,
        )
        return self._add(line)

    def _add(self, line: Line) -> Line:
        self._lines.append(line)
        self.changed()
        return line

    def user_for(self, phone: str, name: str) -> FakeUser:
        """The fake Telegram account of `phone` (E.164), made on first use."""
        user = self._users.get(phone)
        if user is None:
            user = FakeUser(phone, name)
            self._users[phone] = user
        return user

    def changed(self) -> None:
        """Wake everyone waiting in `wait_for` (each rechecks its own condition)."""
        self._changed.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ reading

    def lines(self) -> list[Line]:
        return list(self._lines)

    def received(self) -> list[Line]:
        """What the phones and chats received (not the fake users' own messages)."""
        return [line for line in self._lines if not line.from_user]

    def find(self, chat_id: int, message_id: int) -> Line | None:
        for line in reversed(self._lines):
            if line.chat_id == chat_id and line.message_id == message_id:
                return line
        return None

    def user_of_chat(self, chat_id: int) -> FakeUser:
        """The chat's fake user; a chat linked in an earlier run is known by its id alone."""
        known = next((user for user in self._users.values() if user.user_id == chat_id), None)
        return known or FakeUser(f"+{chat_id}", UNKNOWN_NAME)

    async def wait_for(self, predicate: Callable[[], bool], seconds: float) -> bool:
        """True as soon as `predicate()` holds, False when `seconds` pass first."""
        deadline = time.monotonic() + seconds
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True
