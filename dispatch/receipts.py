"""Delivery receipts: from provider callbacks and from polling status endpoints."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.channels.sms.base import DeliveryState, ProviderError, Receipt, SmsProvider
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


@dataclass(frozen=True, slots=True)
class ReceiptTally:
    applied: int = 0
    unknown: int = 0
    """For a message that is already final, or was never ours."""
    in_progress: int = 0
    parked: int = 0
    """For a message id no notification carries yet: kept for the receipts job."""

    def __add__(self, other: ReceiptTally) -> ReceiptTally:
        return ReceiptTally(
            applied=self.applied + other.applied,
            unknown=self.unknown + other.unknown,
            in_progress=self.in_progress + other.in_progress,
            parked=self.parked + other.parked,
        )


async def apply_receipts(
    db: Database, provider: str, receipts: Iterable[Receipt], *, actor: str
) -> ReceiptTally:
    """Record final delivery states; in-progress states change nothing.

    A final state for a message id no notification carries yet is parked: the provider may
    have answered before the worker's "sent" row was committed. The receipts job applies it
    later (`retry_parked`).
    """
    applied = unknown = in_progress = parked = 0
    now = utcnow()
    async with db.transaction() as session:
        for receipt in receipts:
            status = _FINAL.get(receipt.state)
            if status is None:
                in_progress += 1
                continue
            reason = receipt.reason or (
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
                parked += 1
                await parked_receipts.park(
                    session,
                    Parked(provider, receipt.provider_message_id, status, reason, actor, now),
                )
                logger.info(
                    "receipt from %s for message %s (%s) before its send was recorded: parked",
                    provider,
                    receipt.provider_message_id,
                    receipt.state.value,
                )
            else:
                unknown += 1
                logger.info(
                    "receipt from %s for message %s (%s), which is already final",
                    provider,
                    receipt.provider_message_id,
                    receipt.state.value,
                )
    return ReceiptTally(applied=applied, unknown=unknown, in_progress=in_progress, parked=parked)


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
    applied = unknown = waiting = 0
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
            done.append(key)
            logger.warning(
                "receipt from %s for message %s dropped: no notification carries that id", *key
            )
        else:
            waiting += 1
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
