"""Delivery receipts: from provider callbacks and from polling status endpoints."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from dispatch.channels.sms.base import DeliveryState, ProviderError, Receipt, SmsProvider
from storage import notifications
from storage.database import Database
from storage.statuses import Status
from storage.types import utcnow

logger = logging.getLogger(__name__)

POLL_WINDOW = timedelta(hours=48)
POLL_BATCH = 100

_FINAL = {DeliveryState.DELIVERED: Status.DELIVERED, DeliveryState.FAILED: Status.FAILED}


@dataclass(frozen=True, slots=True)
class ReceiptTally:
    applied: int = 0
    unknown: int = 0
    in_progress: int = 0


async def apply_receipts(
    db: Database, provider: str, receipts: Iterable[Receipt], *, actor: str
) -> ReceiptTally:
    """Record final delivery states; unknown ids and in-progress states change nothing."""
    applied = unknown = in_progress = 0
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
            updated = await notifications.apply_receipt(
                session,
                provider=provider,
                provider_message_id=receipt.provider_message_id,
                to_status=status,
                reason=reason,
                actor=actor,
                now=now,
            )
            if updated is None:
                unknown += 1
                logger.info(
                    "receipt from %s for unknown or final message %s (%s)",
                    provider,
                    receipt.provider_message_id,
                    receipt.state.value,
                )
            else:
                applied += 1
    return ReceiptTally(applied=applied, unknown=unknown, in_progress=in_progress)


async def poll_receipts(db: Database, providers: Mapping[str, SmsProvider]) -> ReceiptTally:
    """Ask every provider with a status endpoint about its sent, unconfirmed messages."""
    total = ReceiptTally()
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
        tally = await apply_receipts(db, name, receipts, actor=f"poll:{name}")
        total = ReceiptTally(
            applied=total.applied + tally.applied,
            unknown=total.unknown + tally.unknown,
            in_progress=total.in_progress + tally.in_progress,
        )
    return total
