"""What turns a money balance into SMS left: the price of one segment, and how fast the
money goes.

The price, first found wins (CONTRACT §8):

1. the provider's price API (`SmsProvider.price()`: SMSC, SMS.ru), kept for an hour: SMSC
   refuses a sixth identical cost request within a minute, and prices change rarely;
2. the average recorded cost per segment of the service's last sends (the journal);
3. `price_per_sms` of the service.

The spending is that of the last 7 days: recorded costs, plus the parts of sends whose cost
the provider never reported (SMS.ru) at the price above. A service younger than the window
is averaged over its own age (at least a day), so a first busy morning does not read as a
week's spending.
"""

from __future__ import annotations

import logging
import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from dispatch.delivery.channels.sms.base import ProviderError, SmsProvider
from storage.database import Database
from storage.ops import spending

logger = logging.getLogger(__name__)

PRICE_CACHE_SECONDS = 3600.0
SPENDING_WINDOW = timedelta(days=7)
_DAY = Decimal(86400)
_CENTS = Decimal("0.01")

# Keyed by the adapter object: a service rebuilt with new settings starts afresh.
_provider_prices: weakref.WeakKeyDictionary[SmsProvider, tuple[float, Decimal]] = (
    weakref.WeakKeyDictionary()
)


class PriceSource(StrEnum):
    PROVIDER = "provider"
    """The provider's price API."""
    RECORDED = "recorded"
    """The average cost per segment of the last sends."""
    CONFIGURED = "configured"
    """`price_per_sms` of the service."""


@dataclass(frozen=True, slots=True)
class SmsPrice:
    amount: Decimal
    source: PriceSource

    def sms_for(self, balance: Decimal) -> int:
        """Whole segments `balance` pays for (none when it is negative)."""
        return max(0, int(balance // self.amount))


def price_text(amount: Decimal) -> str:
    """`2.50`, `1.8966`: cents always, more places only where the price has them."""
    exact = amount.quantize(Decimal("0.0001")).normalize()
    cents = exact.quantize(_CENTS)
    return str(cents if cents == exact else exact)


async def provider_price(provider: SmsProvider) -> Decimal | None:
    """The price API's answer, from the cache when fresh; on a failed read the last known
    price (or None): the fallbacks then apply."""
    cached = _provider_prices.get(provider)
    now = time.monotonic()
    if cached is not None and now - cached[0] < PRICE_CACHE_SECONDS:
        return cached[1]
    try:
        price = await provider.price()
    except ProviderError as exc:
        logger.warning("price of one SMS from %s not read: %s", provider.name, exc)
        return cached[1] if cached is not None else None
    if price is not None:
        _provider_prices[provider] = (now, price)
    return price


async def sms_price(provider: SmsProvider, db: Database | None) -> SmsPrice | None:
    """The price of one segment of `provider` (without `db`, recorded costs are skipped);
    None when nothing tells it."""
    from_api = await provider_price(provider)
    if from_api is not None:
        return SmsPrice(from_api, PriceSource.PROVIDER)
    if db is not None:
        async with db.sessions() as session:
            recorded = await spending.recent_cost_per_segment(session, provider=provider.name)
        if recorded is not None:
            return SmsPrice(recorded, PriceSource.RECORDED)
    configured = provider.config.price_per_sms
    return SmsPrice(configured, PriceSource.CONFIGURED) if configured is not None else None


async def spent_per_day(
    db: Database, provider: str, price: SmsPrice | None, now: datetime
) -> Decimal | None:
    """What the service spent a day over the last 7 days; None before it spent anything."""
    since = now - SPENDING_WINDOW
    async with db.sessions() as session:
        sent = await spending.spending_since(session, provider=provider, since=since)
    total = sent.cost
    if price is not None:
        total += sent.uncosted_parts * price.amount
    if sent.first_sent_at is None or total <= 0:
        return None
    window = Decimal(int(SPENDING_WINDOW.total_seconds())) / _DAY
    if not sent.older_sends:
        age = Decimal(int((now - sent.first_sent_at).total_seconds())) / _DAY
        window = min(window, max(Decimal(1), age))
    return (total / window).quantize(_CENTS)


def days_left(balance: Decimal, per_day: Decimal | None) -> float | None:
    """How many days `balance` lasts at `per_day`, one decimal."""
    if per_day is None or per_day <= 0:
        return None
    return round(float(max(Decimal(0), balance) / per_day), 1)
