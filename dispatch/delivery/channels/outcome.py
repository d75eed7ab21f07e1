"""What a channel reports about one send: errors are values, never exceptions."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class OutcomeKind(StrEnum):
    SENT = "sent"
    """Accepted by Telegram or the SMS provider."""
    RETRY = "retry"
    """Transient: try the same channel again later (at `retry_after` when known)."""
    PERMANENT = "permanent"
    """This channel cannot deliver this message (bad number, chat not found, rejected text):
    Telegram falls back to the reserve route, SMS fails."""
    BLOCKED = "blocked"
    """Telegram 403: the user blocked the bot. The link is marked blocked; reserve route."""


class ErrorKind(StrEnum):
    NO_MONEY = "no_money"
    INVALID_NUMBER = "invalid_number"
    AUTH = "auth"
    RATE_LIMIT = "rate_limit"
    TRANSIENT = "transient"
    """Network error, timeout, 5xx, provider temporarily unavailable."""
    REJECTED = "rejected"
    """The provider refused this message (text, sender, stop-list, unroutable)."""
    CHAT_NOT_FOUND = "chat_not_found"
    BLOCKED = "blocked"
    BAD_REQUEST = "bad_request"
    CONFIG = "config"
    """Our own configuration is missing something (no bot, no provider)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    reason: str = ""
    error: ErrorKind | None = None
    retry_after: float | None = None
    """Seconds to wait before the next try, when the other side said so."""
    pause_channel: bool = False
    """The whole channel (bot or provider account) should pause for `retry_after`,
    not just this message: a bot-wide 429, no money, bad credentials."""
    provider_message_id: str | None = None
    cost: Decimal | None = None
    parts: int | None = None

    @classmethod
    def sent(
        cls,
        provider_message_id: str | None = None,
        *,
        cost: Decimal | None = None,
        parts: int | None = None,
        reason: str = "accepted",
    ) -> Outcome:
        return cls(
            OutcomeKind.SENT,
            reason=reason,
            provider_message_id=provider_message_id,
            cost=cost,
            parts=parts,
        )

    @classmethod
    def retry(
        cls,
        reason: str,
        error: ErrorKind = ErrorKind.TRANSIENT,
        *,
        retry_after: float | None = None,
        pause_channel: bool = False,
    ) -> Outcome:
        return cls(
            OutcomeKind.RETRY,
            reason=reason,
            error=error,
            retry_after=retry_after,
            pause_channel=pause_channel,
        )

    @classmethod
    def permanent(cls, reason: str, error: ErrorKind) -> Outcome:
        return cls(OutcomeKind.PERMANENT, reason=reason, error=error)

    @classmethod
    def blocked(cls, reason: str = "the user blocked the bot") -> Outcome:
        return cls(OutcomeKind.BLOCKED, reason=reason, error=ErrorKind.BLOCKED)
