"""The SMS balance: one report for every place that shows it, and the monitor that alerts.

`balance_report()` is what `vestnik balance`, `GET /api/v1/balance` and the bot's
`/balance` show: the provider's figure read now, the threshold and its state, and whether
the low-balance alert is currently raised.

`BalanceMonitor.check()` is the scheduled check («Уведомлять об окончании пакета с SMS»).
Per provider there are two alert states, each firing once per crossing:

- `low_balance`: threshold 0 = off (and re-armed). A reading below the threshold while the
  state is inactive raises it (one e-mail to all `admin_emails`, one Telegram message to each
  linked admin) and makes it active; further low readings do nothing; a reading at or above
  the threshold re-arms it, so the next fall alerts again. An unreadable balance changes
  nothing here.
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
from decimal import Decimal
from enum import StrEnum
from typing import Any

from dispatch.config import NotifySettings
from dispatch.delivery.channels.sms.base import Balance, ProviderError, SmsProvider
from dispatch.ops.alerts import Alert, AlertSender, low_balance_context, unreadable_context
from dispatch.ops.email import Mailer
from dispatch.runtime_config import RuntimeConfig
from storage.database import Database
from storage.ops import alerts

logger = logging.getLogger(__name__)


class ThresholdState(StrEnum):
    OFF = "off"
    """Threshold 0: do not notify."""
    BELOW = "below"
    OK = "ok"
    """At or above the threshold."""


def threshold_state(amount: Decimal, threshold: Decimal) -> ThresholdState:
    if not threshold:
        return ThresholdState.OFF
    return ThresholdState.BELOW if amount < threshold else ThresholdState.OK


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
    state: ThresholdState
    alert_active: bool | None
    """Whether the low-balance alert is raised now (None: the database was not asked)."""

    @property
    def below_threshold(self) -> bool:
        return self.state is ThresholdState.BELOW

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "kind": self.kind,
            "balance": str(self.balance),
            "currency": self.currency,
            "threshold": str(self.threshold),
            "below_threshold": self.below_threshold,
            "state": self.state.value,
            "alert_active": self.alert_active,
        }

    def describe(self) -> str:
        """One line, the same in the CLI and the bot."""
        currency = f" {self.currency}" if self.currency else ""
        if self.state is ThresholdState.OFF:
            state = "low-balance alerts off (threshold 0)"
        else:
            where = "BELOW" if self.state is ThresholdState.BELOW else "above"
            state = f"{where} threshold {self.threshold}"
            if self.alert_active is not None:
                state += "; alert raised" if self.alert_active else "; alert armed"
        return f"{self.service} ({self.kind}): balance {self.balance}{currency}; {state}"


async def balance_report(
    provider: SmsProvider, notify: NotifySettings, *, db: Database | None = None
) -> BalanceReport:
    """Read the provider's balance now and put it against the threshold of `notify` (pass
    the effective settings: file + settings API). With `db`, also tell whether the
    low-balance alert is raised. Raises ProviderError when the balance cannot be read."""
    balance = await provider.balance()
    alert_active: bool | None = None
    if db is not None:
        async with db.sessions() as session:
            state = await alerts.get_state(
                session, kind=alerts.LOW_BALANCE, provider=provider.name
            )
        alert_active = bool(state and state.active)
    threshold = notify.low_balance_threshold
    return BalanceReport(
        service=provider.name,
        kind=provider.kind,
        balance=balance.amount,
        currency=balance.currency,
        threshold=threshold,
        state=threshold_state(balance.amount, threshold),
        alert_active=alert_active,
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

        raised, rearmed = await self._record(provider, notify, balance, error, now)

        telegram = 0
        for alert in raised:
            logger.warning("alert %s for %s: %s", alert.kind, alert.provider, alert.subject)
            telegram += await self._sender.send_telegram(alert)
        emails = await self._mailer.flush(now)
        return {
            "provider": provider.name,
            "balance": None if balance is None else str(balance.amount),
            "currency": None if balance is None else balance.currency,
            "error": error,
            "alerts": [alert.kind for alert in raised],
            "rearmed": rearmed,
            "telegram_sent": telegram,
            "emails": emails.as_dict(),
        }

    async def _record(
        self,
        provider: SmsProvider,
        notify: NotifySettings,
        balance: Balance | None,
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
                                threshold=threshold,
                                checked_at=now,
                            ),
                        )
                    )
            else:
                if await alerts.rearm(
                    session, kind=alerts.BALANCE_UNREADABLE, provider=name, now=now
                ):
                    rearmed.append(alerts.BALANCE_UNREADABLE)
                state_now = threshold_state(balance.amount, threshold)
                if state_now is ThresholdState.BELOW:
                    if await alerts.activate(
                        session, kind=alerts.LOW_BALANCE, provider=name, now=now
                    ):
                        raised.append(
                            self._sender.render(
                                alerts.LOW_BALANCE,
                                name,
                                low_balance_context(
                                    provider=name,
                                    provider_kind=provider.kind,
                                    balance=balance.amount,
                                    currency=balance.currency,
                                    threshold=threshold,
                                    checked_at=now,
                                ),
                            )
                        )
                elif await alerts.rearm(session, kind=alerts.LOW_BALANCE, provider=name, now=now):
                    rearmed.append(alerts.LOW_BALANCE)

            if self._mailer.configured:
                for alert in raised:
                    await self._sender.enqueue_email(session, alert, notify.admin_emails, now=now)
            elif raised:
                logger.warning("no SMTP server configured (smtp.host): alerts go to Telegram only")
        return raised, rearmed
