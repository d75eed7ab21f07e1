"""Admin alerts: the texts (Russian templates), the e-mail into the outbox, the Telegram
message to every linked admin.

The e-mail goes into the outbox inside the caller's transaction (the one that decided to
raise the alert), so the decision and the e-mail are stored together; Telegram messages are
sent after that transaction committed, best effort (a failed send is logged; a chat that
blocked the bot is marked blocked).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.delivery.channels.outcome import OutcomeKind
from dispatch.ops.sms_price import SmsPrice
from dispatch.render.renderer import Renderer
from storage import directory
from storage.database import Database
from storage.ops import alerts

if TYPE_CHECKING:
    # Typing only: the channel's module imports aiogram, which a process without a bot skips.
    from dispatch.delivery.channels.telegram import TelegramChannel

logger = logging.getLogger(__name__)

LOW_BALANCE = alerts.LOW_BALANCE
BALANCE_UNREADABLE = alerts.BALANCE_UNREADABLE

EMAIL_TEMPLATES = {
    LOW_BALANCE: ("email/low_balance.subject.txt.j2", "email/low_balance.body.txt.j2"),
    BALANCE_UNREADABLE: (
        "email/balance_unreadable.subject.txt.j2",
        "email/balance_unreadable.body.txt.j2",
    ),
}
TELEGRAM_TEMPLATES = {
    LOW_BALANCE: "bot/alert_low_balance.txt.j2",
    BALANCE_UNREADABLE: "bot/alert_balance_unreadable.txt.j2",
}


@dataclass(frozen=True, slots=True)
class Alert:
    """One rendered alert: the e-mail subject and body and the Telegram text."""

    kind: str
    provider: str
    subject: str
    body: str
    telegram_text: str


def low_balance_context(
    *,
    provider: str,
    provider_kind: str,
    balance: Decimal,
    currency: str | None,
    price: SmsPrice | None,
    threshold: int,
    checked_at: datetime,
) -> dict[str, Any]:
    """`threshold` and `sms_left` count SMS; `price_per_sms` is one segment's price."""
    return {
        "provider": {"name": provider, "kind": provider_kind},
        "balance": balance,
        "currency": currency or "RUB",
        "sms_left": None if price is None else price.sms_for(balance),
        "price_per_sms": None if price is None else price.amount,
        "price_source": None if price is None else price.source.value,
        "threshold": threshold,
        "checked_at": checked_at,
        "checked_at_text": _utc_text(checked_at),
    }


def unreadable_context(
    *,
    provider: str,
    provider_kind: str,
    failures: int,
    error: str,
    threshold: int,
    checked_at: datetime,
) -> dict[str, Any]:
    return {
        "provider": {"name": provider, "kind": provider_kind},
        "failures": failures,
        "error": error,
        "threshold": threshold,
        "checked_at": checked_at,
        "checked_at_text": _utc_text(checked_at),
    }


class AlertSender:
    """Renders alerts and delivers them: e-mail through the outbox, Telegram directly."""

    def __init__(
        self, *, db: Database, renderer: Renderer, telegram: TelegramChannel | None
    ) -> None:
        self._db = db
        self._renderer = renderer
        self._telegram = telegram

    def render(self, kind: str, provider: str, context: dict[str, Any]) -> Alert:
        subject_template, body_template = EMAIL_TEMPLATES[kind]
        subject = " ".join(self._renderer.render(subject_template, context).split())
        return Alert(
            kind=kind,
            provider=provider,
            subject=subject,
            body=self._renderer.render(body_template, context),
            telegram_text=self._renderer.render(TELEGRAM_TEMPLATES[kind], context),
        )

    async def enqueue_email(
        self, session: AsyncSession, alert: Alert, recipients: Sequence[str], *, now: datetime
    ) -> int | None:
        """Put the alert's e-mail into the outbox (in `session`'s transaction); None when
        there is nobody to write to."""
        if not recipients:
            logger.warning(
                "%s alert for %s: no admin_emails configured", alert.kind, alert.provider
            )
            return None
        return await alerts.enqueue_email(
            session,
            recipients=list(dict.fromkeys(recipients)),
            subject=alert.subject,
            body=alert.body,
            now=now,
        )

    async def send_telegram(self, alert: Alert) -> int:
        """Send the alert to every linked admin chat; returns how many took it."""
        if self._telegram is None:
            return 0
        async with self._db.sessions() as session:
            chats = await alerts.admin_chat_ids(session)
        delivered = 0
        for chat_id in chats:
            outcome = await self._telegram.send(chat_id, alert.telegram_text)
            if outcome.kind is OutcomeKind.SENT:
                delivered += 1
                continue
            logger.warning(
                "%s alert to admin chat %s not delivered: %s",
                alert.kind,
                chat_id,
                outcome.reason,
            )
            if outcome.kind is OutcomeKind.BLOCKED:
                async with self._db.transaction() as session:
                    await directory.set_chat_flags(session, chat_id, blocked=True)
        return delivered


def _utc_text(moment: datetime) -> str:
    return moment.strftime("%d.%m.%Y %H:%M UTC")
