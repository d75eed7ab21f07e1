"""The seed's «Проверить баланс» and «Тестовое SMS».

The test SMS costs the shop money and goes to any number its requester types, so it is the
shape SMS pumping takes (an attacker has premium-rate numbers texted and shares the fee).
`send_test_sms` with `limits` (the `[test_sms]` settings) is the one place that bounds it,
for the bot's `/testsms` and `POST /api/v1/test-sms` alike: the number's country must be in
`countries`, and at most `daily_limit` test SMS are sent per UTC day, counted in the journal
(so every replica and every restart sees the same count). A refusal is `TestSmsRefused`;
the edges translate it (a bot text, a 422/429/403 answer). Who may ask (admins only) is the
edges' authorisation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import phonenumbers

from dispatch.config import SmsTestSettings
from dispatch.delivery.channels.outcome import Outcome, OutcomeKind
from dispatch.delivery.channels.sms.base import SmsMessage, SmsProvider
from dispatch.errors import DispatchError
from dispatch.render.segments import segment_text
from storage import notifications, queue
from storage.database import Database
from storage.statuses import Status
from storage.types import utcnow

logger = logging.getLogger(__name__)

TEST_SMS_EVENT_TYPE = "test_sms"
# One Cyrillic segment (≤ 70 UCS-2 units): the docs and `vestnik test-sms --help` promise
# that the test costs one SMS.
TEST_SMS_TEXT = "Vestnik: тестовое SMS. Если вы его читаете, отправка работает."
# The row is leased while the test SMS is sent synchronously, so no worker touches it.
TEST_LEASE = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class TestSmsResult:
    notification_id: int
    outcome: Outcome
    encoding: str
    segments: int


class Refusal(StrEnum):
    COUNTRY = "country"
    """The number is not in one of the allowed countries."""
    DAILY_LIMIT = "daily_limit"
    """Today's test SMS are used up."""
    DISABLED = "disabled"
    """`daily_limit = 0`: the test SMS is turned off."""


class TestSmsRefused(DispatchError):
    """The test SMS was not sent (nor journaled); `reason` says why."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(
        self,
        reason: Refusal,
        message: str,
        *,
        countries: tuple[str, ...] = (),
        region: str | None = None,
        limit: int = 0,
        resets_at: datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.countries = countries
        """The allowed region codes (COUNTRY)."""
        self.region = region
        """The number's region code, None when it has none (COUNTRY)."""
        self.limit = limit
        self.resets_at = resets_at
        """When the count starts again (DAILY_LIMIT): the next 00:00 UTC."""


def phone_region(phone: str) -> str | None:
    """The region code of an E.164 number (`+77011234567` → `KZ`); None when the number
    belongs to no country (a non-geographic `+800 …`) or to none validly."""
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    return region if region and region != phonenumbers.UNKNOWN_REGION and region != "001" else None


def day_start(now: datetime) -> datetime:
    """00:00 UTC of `now`'s day: the test SMS count starts there."""
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def check_country(phone: str, limits: SmsTestSettings) -> None:
    """Raise `TestSmsRefused(COUNTRY)` unless `phone` is a number of an allowed country."""
    region = phone_region(phone)
    if region is None or region not in limits.countries:
        allowed = tuple(limits.countries)
        raise TestSmsRefused(
            Refusal.COUNTRY,
            f"test SMS go only to numbers of {', '.join(allowed)} (test_sms.countries); "
            f"this number is {'of ' + region if region else 'of no allowed country'}",
            countries=allowed,
            region=region,
        )


async def send_test_sms(
    db: Database,
    provider: SmsProvider,
    phone: str,
    *,
    actor: str,
    text: str = TEST_SMS_TEXT,
    limits: SmsTestSettings | None = None,
) -> TestSmsResult:
    """Send one test SMS now (no retries) and journal it as a `test_sms` notification.

    With `limits`, first refuse (`TestSmsRefused`, nothing sent or journaled) a number
    outside `limits.countries` and a request over `limits.daily_limit` for today (UTC).
    The count and the new row are one transaction, serialised across replicas, so parallel
    requests cannot all squeeze under the cap. Without `limits` (the operator's
    `vestnik test-sms` at the server's console) nothing is checked.
    """
    if limits is not None:
        if limits.daily_limit == 0:
            raise TestSmsRefused(
                Refusal.DISABLED, "the test SMS is turned off (test_sms.daily_limit = 0)"
            )
        check_country(phone, limits)
    figures = segment_text(text)
    now = utcnow()
    lease_until = now + TEST_LEASE
    async with db.transaction() as session:
        if limits is not None:
            since = day_start(now)
            sent_today = await notifications.count_without_client_since(
                session, event_type=TEST_SMS_EVENT_TYPE, since=since, lock=True
            )
            if sent_today >= limits.daily_limit:
                resets_at = since + timedelta(days=1)
                raise TestSmsRefused(
                    Refusal.DAILY_LIMIT,
                    f"the daily limit of {limits.daily_limit} test SMS is used up "
                    f"(test_sms.daily_limit); it resets at {resets_at.isoformat()}",
                    limit=limits.daily_limit,
                    resets_at=resets_at,
                )
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
