"""Journal statuses (CONTRACT §4) and who may move a notification between them."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    TEST = "test"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    NOT_SENT = "not_sent"
    SENT_MANUALLY = "sent_manually"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    SCHEDULED = "scheduled"
    """Held by quiet hours (CONTRACT §9): claimed like `pending` once `next_attempt_at`
    (the journal's `not_before`) has come."""


ALL_STATUSES: tuple[str, ...] = tuple(status.value for status in Status)

# The statuses a worker may claim.
QUEUED = (Status.PENDING, Status.SENDING, Status.SCHEDULED)

# Statuses an operator may set by hand, and from which statuses (the rest belong to workers).
MANUAL_TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.SENT_MANUALLY: frozenset(
        {
            Status.NOT_SENT,
            Status.AWAITING_CONFIRMATION,
            Status.FAILED,
            Status.SKIPPED,
            Status.PENDING,
            Status.TEST,
            Status.CANCELLED,
            Status.SCHEDULED,
        }
    ),
    Status.CANCELLED: frozenset(
        {
            Status.AWAITING_CONFIRMATION,
            Status.PENDING,
            Status.NOT_SENT,
            Status.FAILED,
            Status.SCHEDULED,
        }
    ),
}
