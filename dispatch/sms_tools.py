"""The seed's «Проверить баланс» and «Тестовое SMS»."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from dispatch.channels.outcome import Outcome, OutcomeKind
from dispatch.channels.sms.base import SmsMessage, SmsProvider
from dispatch.segments import segment_text
from storage import notifications, queue
from storage.database import Database
from storage.statuses import Status
from storage.types import utcnow

logger = logging.getLogger(__name__)

TEST_SMS_EVENT_TYPE = "test_sms"
TEST_SMS_TEXT = "Vestnik: тестовое сообщение. Если вы его получили, отправка SMS настроена верно."
# The row is leased while the test SMS is sent synchronously, so no worker touches it.
TEST_LEASE = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class TestSmsResult:
    notification_id: int
    outcome: Outcome
    encoding: str
    segments: int


async def send_test_sms(
    db: Database, provider: SmsProvider, phone: str, *, actor: str, text: str = TEST_SMS_TEXT
) -> TestSmsResult:
    """Send one test SMS now (no retries) and journal it as a `test_sms` notification."""
    figures = segment_text(text)
    now = utcnow()
    lease_until = now + TEST_LEASE
    async with db.transaction() as session:
        [notification_id] = await notifications.insert_notifications(
            session,
            [
                {
                    "event_type": TEST_SMS_EVENT_TYPE,
                    "recipient": "admin",
                    "channel": "sms",
                    "phone": phone,
                    "status": Status.SENDING,
                    "reason": f"test SMS requested by {actor}",
                    "text": text,
                    "encoding": figures.encoding,
                    "units": figures.units,
                    "segments": figures.segments,
                    "provider": provider.name,
                    "lease_until": lease_until,
                }
            ],
            actor=actor,
        )
    outcome = await provider.send(
        SmsMessage(
            notification_id=notification_id,
            phone=phone,
            text=text,
            sender=provider.config.sender,
        )
    )
    sent = outcome.kind is OutcomeKind.SENT
    async with db.transaction() as session:
        await queue.finish(
            session,
            notification_id,
            lease_until=lease_until,
            to_status=Status.SENT if sent else Status.FAILED,
            now=utcnow(),
            reason=outcome.reason,
            attempts=1,
            sent_at=utcnow() if sent else None,
            provider_message_id=outcome.provider_message_id,
            cost=outcome.cost,
            provider_parts=outcome.parts,
        )
    return TestSmsResult(
        notification_id=notification_id,
        outcome=outcome,
        encoding=figures.encoding,
        segments=figures.segments,
    )
