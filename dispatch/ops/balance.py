"""The SMS balance: one report for every place that shows it, and the monitor that alerts.

`balance_report()` is what `vestnik balance`, `GET /api/v1/balance` and the bot's
`/balance` show: the provider's figure read now, the SMS it pays for (sms_price.py finds
the price of one segment), the threshold in SMS and its state, the spending of the last
week with the days it leaves, and whether the low-balance alert is currently raised.

`BalanceMonitor.check()` is the scheduled check («Уведомлять об окончании пакета с SMS»).
Per provider there are two alert states, each firing once per crossing:

- `low_balance`: threshold 0 = off (and re-armed). The threshold counts SMS: a reading
  that pays for fewer SMS than the threshold while the state is inactive raises it (one
  e-mail to all `admin_emails`, one Telegram message to each linked admin) and makes it
  active; further low readings do nothing; a reading at or above the threshold re-arms it,
  so the next fall alerts again. An unreadable balance, or one no price of a segment can
  convert, changes nothing here.
- `balance_unreadable`: every failed reading counts one; at `failures_before_alert`
  consecutive failures it is raised once; a successful reading re-arms it.

Every check is stored (`balance_checks`: time, balance, currency or the error). The check,
the state change and the e-mail (in the outbox) are one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.config import NotifySettings
from dispatch.delivery.channels.sms.base import Balance, ProviderError, SmsProvider
from dispatch.ops.alerts import Alert, AlertSender, low_balance_context, unreadable_context
from dispatch.ops.email import Mailer
from dispatch.ops.sms_price import SmsPrice, days_left, price_text, sms_price, spent_per_day
from dispatch.render.filters import money
from dispatch.runtime_config import RuntimeConfig
from storage.database import Database
from storage.ops import alerts
from storage.types import utcnow

logger = logging.getLogger(__name__)


class ThresholdState(StrEnum):
    OFF = "off"
    """Threshold 0: do not notify."""
    BELOW = "below"
    """Fewer SMS left than the threshold."""
    OK = "ok"
    """At or above the threshold."""
    UNKNOWN = "unknown"
    """No price of one SMS is known (no price API, no recorded cost, no `price_per_sms`)."""


def threshold_count(threshold: Decimal) -> int:
    """The threshold in whole SMS; a fraction rounds up, which keeps `left < threshold`."""
    return int(threshold.to_integral_value(ROUND_CEILING))


def threshold_state(sms_left: int | None, threshold: Decimal) -> ThresholdState:
    if not threshold:
        return ThresholdState.OFF
    if sms_left is None:
        return ThresholdState.UNKNOWN
    return ThresholdState.BELOW if sms_left < threshold else ThresholdState.OK


def provider_in_use(
    providers: Mapping[str, SmsProvider], notify: NotifySettings
) -> SmsProvider | None:
    """The provider notifications use: `notify.sms_service`, else the first configured."""
    if notify.sms_service is not None and notify.sms_service in providers:
        return providers[notify.sms_service]
    return next(iter(providers.values()), None)


@dataclass(frozen=True, slots=True)
class BalanceReport:
    service: str
    kind: str
    balance: Decimal
    currency: str | None
    threshold: Decimal
    """In SMS (`notify.low_balance_threshold`)."""
    state: ThresholdState
    alert_active: bool | None
    """Whether the low-balance alert is raised now (None: the database was not asked)."""
    price: SmsPrice | None = None
    """The price of one segment and where it came from; None when nothing tells it."""
    sms_left: int | None = None
    spent_per_day: Decimal | None = None
    """The average spending a day over the last 7 days (None: no spending yet, or no
    database asked)."""
    days_left: float | None = None

    @property
    def below_threshold(self) -> bool:
        return self.state is ThresholdState.BELOW

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "kind": self.kind,
            "balance": str(self.balance),
            "currency": self.currency,
            "price_per_sms": None if self.price is None else price_text(self.price.amount),
            "price_source": None if self.price is None else self.price.source.value,
            "sms_left": self.sms_left,
            "threshold": threshold_count(self.threshold),
            "below_threshold": self.below_threshold,
            "state": self.state.value,
            "alert_active": self.alert_active,
            "spent_per_day": None if self.spent_per_day is None else str(self.spent_per_day),
            "days_left": self.days_left,
        }

    def text_context(self) -> dict[str, Any]:
        """What the bot's balance text shows, money already in Russian format."""
        return {
            "service": self.service,
            "error": None,
            "balance_money": money(self.balance, self.currency),
            "price_money": None if self.price is None else money(self.price.amount, self.currency),
            "sms_left": self.sms_left,
            "threshold": threshold_count(self.threshold),
            "state": self.state.value,
            "alert_active": self.alert_active,
            "spent_money": None
            if self.spent_per_day is None
            else money(self.spent_per_day, self.currency),
            "days_text": None
            if self.days_left is None
            else f"{self.days_left:.1f}".replace(".", ","),
        }

    def describe(self) -> str:
        """One line for `vestnik balance`, in English like all CLI output."""
        currency = f" {self.currency}" if self.currency else ""
        line = f"{self.service} ({self.kind}): balance {self.balance}{currency}"
        if self.price is None:
            line += "; SMS left unknown (no price of one SMS: set price_per_sms)"
        else:
            line += (
                f" = {self.sms_left} SMS at {price_text(self.price.amount)}"
                f" ({self.price.source.value} price)"
            )
        threshold = threshold_count(self.threshold)
        if self.state is ThresholdState.OFF:
            line += "; low-balance alerts off (threshold 0)"
        elif self.state is ThresholdState.UNKNOWN:
            line += f"; threshold {threshold} SMS not checked"
        else:
            where = "BELOW" if self.state is ThresholdState.BELOW else "at or above"
            line += f"; {where} threshold {threshold} SMS"
            if self.alert_active is not None:
                line += "; alert raised" if self.alert_active else "; alert armed"
        if self.spent_per_day is not None:
            line += f"; spending {self.spent_per_day}{currency} a day, {self.days_left} days left"
        return line


async def balance_report(
    provider: SmsProvider, notify: NotifySettings, *, db: Database | None = None
) -> BalanceReport:
    """Read the provider's balance now and put it against the threshold of `notify` (pass
    the effective settings: file + settings API). With `db`, also use the journal's
    recorded costs (for the price and the spending) and tell whether the low-balance alert
    is raised. Raises ProviderError when the balance cannot be read."""
    balance = await provider.balance()
    price = await sms_price(provider, db)
    sms_left = None if price is None else price.sms_for(balance.amount)
    alert_active: bool | None = None
    per_day: Decimal | None = None
    if db is not None:
        async with db.sessions() as session:
            state = await alerts.get_state(
                session, kind=alerts.LOW_BALANCE, provider=provider.name
            )
        alert_active = bool(state and state.active)
        per_day = await spent_per_day(db, provider.name, price, utcnow())
    threshold = notify.low_balance_threshold
    return BalanceReport(
        service=provider.name,
        kind=provider.kind,
        balance=balance.amount,
        currency=balance.currency,
        threshold=threshold,
        state=threshold_state(sms_left, threshold),
        alert_active=alert_active,
        price=price,
        sms_left=sms_left,
        spent_per_day=per_day,
        days_left=days_left(balance.amount, per_day),
    )


class BalanceMonitor:
    """The scheduled balance check with its two once-per-crossing alerts."""

    def __init__(
        self,
        *,
        db: Database,
        config: RuntimeConfig,
        providers: Mapping[str, SmsProvider],
        sender: AlertSender,
        mailer: Mailer,
        failures_before_alert: int = 3,
    ) -> None:
        self._db = db
        self._config = config
        self._providers = providers
        self._sender = sender
        self._mailer = mailer
        self._failures_before_alert = failures_before_alert

    async def check(self, now: datetime) -> dict[str, Any]:
        """Read, store, decide, alert; then send what the outbox holds. Returns a summary."""
        async with self._db.sessions() as session:
            notify = (await self._config.current(session)).notify
        provider = provider_in_use(self._providers, notify)
        if provider is None:
            return {"skipped": "no SMS service configured"}

        balance: Balance | None = None
        error: str | None = None
        try:
            balance = await provider.balance()
        except ProviderError as exc:
            error = str(exc) or type(exc).__name__
        except Exception as exc:  # an adapter bug must count as unreadable, not stop the job
            logger.exception("balance of %s: unexpected error", provider.name)
            error = f"{type(exc).__name__}: {exc}"

        price = None if balance is None else await self._price(provider)
        raised, rearmed = await self._record(provider, notify, balance, price, error, now)

        telegram = 0
        for alert in raised:
            logger.warning("alert %s for %s: %s", alert.kind, alert.provider, alert.subject)
            telegram += await self._sender.send_telegram(alert)
        emails = await self._mailer.flush(now)
        return {
            "provider": provider.name,
            "balance": None if balance is None else str(balance.amount),
            "currency": None if balance is None else balance.currency,
            "price_per_sms": None if price is None else price_text(price.amount),
            "price_source": None if price is None else price.source.value,
            "sms_left": None
            if price is None or balance is None
            else price.sms_for(balance.amount),
            "threshold": threshold_count(notify.low_balance_threshold),
            "error": error,
            "alerts": [alert.kind for alert in raised],
            "rearmed": rearmed,
            "telegram_sent": telegram,
            "emails": emails.as_dict(),
        }

    async def _price(self, provider: SmsProvider) -> SmsPrice | None:
        try:
            price = await sms_price(provider, self._db)
        except Exception:  # an adapter bug must leave the SMS uncounted, not stop the job
            logger.exception("price of one SMS of %s: unexpected error", provider.name)
            return None
        if price is None:
            logger.warning(
                "%s: the price of one SMS is unknown (no price API, no recorded cost): set "
                "price_per_sms of the service, or the low-balance alert cannot work",
                provider.name,
            )
        return price

    async def _record(
        self,
        provider: SmsProvider,
        notify: NotifySettings,
        balance: Balance | None,
        price: SmsPrice | None,
        error: str | None,
        now: datetime,
    ) -> tuple[list[Alert], list[str]]:
        """Store the check and move both states, in one transaction; returns the alerts to
        raise (their e-mails are already in the outbox) and the kinds re-armed."""
        name = provider.name
        threshold = notify.low_balance_threshold
        raised: list[Alert] = []
        rearmed: list[str] = []
        async with self._db.transaction() as session:
            await alerts.record_check(
                session,
                provider=name,
                checked_at=now,
                balance=None if balance is None else balance.amount,
                currency=None if balance is None else balance.currency,
                error=error,
            )
            for kind in (alerts.LOW_BALANCE, alerts.BALANCE_UNREADABLE):
                await alerts.ensure_state(session, kind=kind, provider=name, now=now)

            if balance is None:
                state = await alerts.count_failure(
                    session, kind=alerts.BALANCE_UNREADABLE, provider=name, now=now
                )
                if state.failures >= self._failures_before_alert and await alerts.activate(
                    session, kind=alerts.BALANCE_UNREADABLE, provider=name, now=now
                ):
                    raised.append(
                        self._sender.render(
                            alerts.BALANCE_UNREADABLE,
                            name,
                            unreadable_context(
                                provider=name,
                                provider_kind=provider.kind,
                                failures=state.failures,
                                error=error or "",
                                threshold=threshold_count(threshold),
                                checked_at=now,
                            ),
                        )
                    )
            else:
                if await alerts.rearm(
                    session, kind=alerts.BALANCE_UNREADABLE, provider=name, now=now
                ):
                    rearmed.append(alerts.BALANCE_UNREADABLE)
                await self._move_low_balance(
                    session, provider, balance, price, threshold, now, raised, rearmed
                )

            if self._mailer.configured:
                for alert in raised:
                    await self._sender.enqueue_email(session, alert, notify.admin_emails, now=now)
            elif raised:
                logger.warning("no SMTP server configured (smtp.host): alerts go to Telegram only")
        return raised, rearmed

    async def _move_low_balance(
        self,
        session: AsyncSession,
        provider: SmsProvider,
        balance: Balance,
        price: SmsPrice | None,
        threshold: Decimal,
        now: datetime,
        raised: list[Alert],
        rearmed: list[str],
    ) -> None:
        """Raise or re-arm `low_balance` for a balance read now; without a price there is
        nothing to compare with, and the state waits."""
        name = provider.name
        sms_left = None if price is None else price.sms_for(balance.amount)
        state_now = threshold_state(sms_left, threshold)
        if state_now is ThresholdState.UNKNOWN:
            return
        if state_now is not ThresholdState.BELOW:
            if await alerts.rearm(session, kind=alerts.LOW_BALANCE, provider=name, now=now):
                rearmed.append(alerts.LOW_BALANCE)
            return
        if await alerts.activate(session, kind=alerts.LOW_BALANCE, provider=name, now=now):
            context = low_balance_context(
                provider=name,
                provider_kind=provider.kind,
                balance=balance.amount,
                currency=balance.currency,
                price=price,
                threshold=threshold_count(threshold),
                checked_at=now,
            )
            raised.append(self._sender.render(alerts.LOW_BALANCE, name, context))
