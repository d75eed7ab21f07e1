"""Delivery receipts: from provider callbacks and from polling status endpoints."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.delivery.channels.sms.base import DeliveryState, ProviderError, Receipt, SmsProvider
from dispatch.errors import DispatchError
from storage import notifications, parked_receipts
from storage.database import Database
from storage.notifications import ReceiptMatch
from storage.parked_receipts import Parked
from storage.statuses import Status
from storage.types import utcnow

logger = logging.getLogger(__name__)

POLL_WINDOW = timedelta(hours=48)
POLL_BATCH = 100

_FINAL = {DeliveryState.DELIVERED: Status.DELIVERED, DeliveryState.FAILED: Status.FAILED}


PARKED_MAX_AGE = timedelta(hours=48)
PARKED_BATCH = 500

MAX_RECEIPTS_PER_CALLBACK = 500
"""A provider reports one message per callback (SMS.ru: a handful): more is a flood, and one
callback must not hold a transaction open for thousands of rows."""
MAX_MESSAGE_ID_LENGTH = 128
"""The `provider_message_id` columns (notifications, parked_receipts) are this long."""
MAX_REASON_LENGTH = 300
MAX_PARKED_PER_PROVIDER = 1000
"""Parked receipts live for the milliseconds between a provider's answer and our commit of
the send; this many for one provider means something posts ids we never sent. Beyond it,
new unknown ids are dropped (counted), not stored."""
OWN_ID_MARGIN = 1000
"""SMSC echoes our notification id: an id this far beyond the newest notification cannot
be one we sent (the notification row is committed before its send starts; the margin only
absorbs ids being inserted right now)."""
_PARKABLE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,63}")
"""The ids providers hand out (Twilio `SM…`, SMS.ru `000000-0000000`, SMS Aero numbers,
UUIDs, gateway ids): only such ids are parked for later."""
_OWN_ID = re.compile(r"[1-9][0-9]{0,18}")


class ReceiptsRefused(DispatchError):
    """A callback's receipts as a whole cannot be taken: nothing of it is applied."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class ReceiptTally:
    applied: int = 0
    unknown: int = 0
    """For a message that is already final, or was never ours."""
    in_progress: int = 0
    parked: int = 0
    """For a message id no notification carries yet: kept for the receipts job."""
    dropped: int = 0
    """For a message id no notification carries that cannot be ours (not of a provider id's
    shape, beyond our newest notification id) or that the full park would not take."""

    def __add__(self, other: ReceiptTally) -> ReceiptTally:
        return ReceiptTally(
            applied=self.applied + other.applied,
            unknown=self.unknown + other.unknown,
            in_progress=self.in_progress + other.in_progress,
            parked=self.parked + other.parked,
            dropped=self.dropped + other.dropped,
        )


def _unprintable(text: str) -> bool:
    """Control, format and line/paragraph-separator characters: PostgreSQL text cannot hold
    NUL, and the others would forge or break log lines."""
    return any(unicodedata.category(char)[0] == "C" or char in "\u2028\u2029" for char in text)


def _clean_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    cleaned = "".join(" " if _unprintable(char) else char for char in reason).strip()
    return cleaned[:MAX_REASON_LENGTH] or None


def checked_receipts(receipts: Sequence[Receipt]) -> list[Receipt]:
    """A callback's receipts, fit to apply; ReceiptsRefused (nothing applied) when there are
    too many, or a message id is too long for its column or holds control characters.

    Reasons are provider text: `apply_receipts` turns their control characters into spaces
    instead of refusing (polled receipts go through it too).
    """
    if len(receipts) > MAX_RECEIPTS_PER_CALLBACK:
        raise ReceiptsRefused(
            413,
            "payload_too_large",
            f"a callback may carry at most {MAX_RECEIPTS_PER_CALLBACK} receipts, this one "
            f"has {len(receipts)}; none was applied",
        )
    for position, receipt in enumerate(receipts, start=1):
        message_id = receipt.provider_message_id
        if len(message_id) > MAX_MESSAGE_ID_LENGTH:
            raise ReceiptsRefused(
                422,
                "validation_error",
                f"receipt {position}: the message id is longer than {MAX_MESSAGE_ID_LENGTH} "
                "characters; none was applied",
            )
        if _unprintable(message_id):
            raise ReceiptsRefused(
                422,
                "validation_error",
                f"receipt {position}: the message id contains control characters; "
                "none was applied",
            )
    return list(receipts)


class _ParkPolicy:
    """Which unknown ids of one provider may be parked; asks the database once, lazily."""

    def __init__(self, session: AsyncSession, provider: str, *, own_ids: bool) -> None:
        self._session = session
        self._provider = provider
        self._own_ids = own_ids
        self._room: int | None = None
        self._newest_id: int | None = None

    async def admit(self, message_id: str) -> bool:
        if self._own_ids:
            if not _OWN_ID.fullmatch(message_id):
                return False
            if self._newest_id is None:
                self._newest_id = await parked_receipts.newest_notification_id(self._session)
            if int(message_id) > self._newest_id + OWN_ID_MARGIN:
                return False
        elif not _PARKABLE_ID.fullmatch(message_id):
            return False
        if self._room is None:
            held = await parked_receipts.count_for(self._session, self._provider)
            self._room = max(0, MAX_PARKED_PER_PROVIDER - held)
        if self._room <= 0:
            return False
        self._room -= 1
        return True


async def apply_receipts(
    db: Database,
    provider: str,
    receipts: Iterable[Receipt],
    *,
    actor: str,
    own_ids: bool = False,
) -> ReceiptTally:
    """Record final delivery states; in-progress states change nothing.

    A final state for a message id no notification carries yet is parked: the provider may
    have answered before the worker's "sent" row was committed. The receipts job applies it
    later (`retry_parked`). Only ids that can be the provider's are parked (`own_ids`: the
    provider's ids are our notification ids, see `_ParkPolicy`), at most
    `MAX_PARKED_PER_PROVIDER` per provider; the others are dropped and counted.

    Per-receipt lines are DEBUG: the caller logs one summary line per callback.
    """
    applied = unknown = in_progress = parked = dropped = 0
    now = utcnow()
    async with db.transaction() as session:
        policy = _ParkPolicy(session, provider, own_ids=own_ids)
        for receipt in receipts:
            status = _FINAL.get(receipt.state)
            if status is None:
                in_progress += 1
                continue
            reason = _clean_reason(receipt.reason) or (
                "delivered to the handset" if status is Status.DELIVERED else "not delivered"
            )
            match = await notifications.apply_receipt(
                session,
                provider=provider,
                provider_message_id=receipt.provider_message_id,
                to_status=status,
                reason=reason,
                actor=actor,
                now=now,
            )
            if match is ReceiptMatch.APPLIED:
                applied += 1
            elif match is ReceiptMatch.UNKNOWN:
                if not await policy.admit(receipt.provider_message_id):
                    dropped += 1
                    logger.debug(
                        "receipt from %s for message %r (%s): unknown id, not parked",
                        provider,
                        receipt.provider_message_id,
                        receipt.state.value,
                    )
                    continue
                parked += 1
                await parked_receipts.park(
                    session,
                    Parked(provider, receipt.provider_message_id, status, reason, actor, now),
                )
                logger.debug(
                    "receipt from %s for message %r (%s) before its send was recorded: parked",
                    provider,
                    receipt.provider_message_id,
                    receipt.state.value,
                )
            else:
                unknown += 1
                logger.debug(
                    "receipt from %s for message %r (%s), which is already final",
                    provider,
                    receipt.provider_message_id,
                    receipt.state.value,
                )
    return ReceiptTally(
        applied=applied, unknown=unknown, in_progress=in_progress, parked=parked, dropped=dropped
    )


async def retry_parked(db: Database, *, now: datetime | None = None) -> ReceiptTally:
    """Apply parked receipts whose notification now carries the provider's id; drop those
    that are moot (the notification is final already) or older than `PARKED_MAX_AGE`."""
    now = now or utcnow()
    async with db.transaction() as session:
        parked = await parked_receipts.oldest(session, limit=PARKED_BATCH)
        return await _apply_parked(session, parked, now=now)


async def apply_parked_for(
    session: AsyncSession, keys: list[tuple[str, str]], *, now: datetime
) -> ReceiptTally:
    """Apply, in the caller's transaction, the parked receipts of messages whose "sent" row
    was just written (the outcome writer calls this): no wait for the receipts job."""
    return await _apply_parked(session, await parked_receipts.find(session, keys), now=now)


async def _apply_parked(
    session: AsyncSession, parked: list[Parked], *, now: datetime
) -> ReceiptTally:
    applied = unknown = waiting = expired = 0
    done: list[tuple[str, str]] = []
    for receipt in parked:
        key = (receipt.provider, receipt.provider_message_id)
        match = await notifications.apply_receipt(
            session,
            provider=receipt.provider,
            provider_message_id=receipt.provider_message_id,
            to_status=receipt.status,
            reason=receipt.reason,
            actor=receipt.actor,
            now=now,
        )
        if match is ReceiptMatch.APPLIED:
            applied += 1
            done.append(key)
        elif match is ReceiptMatch.FINAL:
            unknown += 1
            done.append(key)
        elif now - receipt.received_at > PARKED_MAX_AGE:
            unknown += 1
            expired += 1
            done.append(key)
            logger.debug(
                "receipt from %s for message %r dropped: no notification carries that id", *key
            )
        else:
            waiting += 1
    if expired:
        # One line for the batch, not one per receipt (the ids are provider input).
        logger.warning(
            "%d parked receipts dropped: no notification carried their ids within %s",
            expired,
            PARKED_MAX_AGE,
        )
    await parked_receipts.forget(session, done)
    return ReceiptTally(applied=applied, unknown=unknown, parked=waiting)


async def poll_receipts(db: Database, providers: Mapping[str, SmsProvider]) -> ReceiptTally:
    """Apply the parked receipts that can be applied now, then ask every provider with a
    status endpoint about its sent, unconfirmed messages."""
    total = await retry_parked(db)
    since = utcnow() - POLL_WINDOW
    for name, provider in providers.items():
        if not provider.supports_status:
            continue
        async with db.sessions() as session:
            waiting = await notifications.sent_awaiting_receipt(
                session, provider=name, since=since, limit=POLL_BATCH
            )
        if not waiting:
            continue
        try:
            receipts = await provider.fetch_statuses([(pmid, phone) for _, pmid, phone in waiting])
        except ProviderError as exc:
            logger.warning("status poll of %s failed: %s", name, exc)
            continue
        total += await apply_receipts(db, name, receipts, actor=f"poll:{name}")
    return total
