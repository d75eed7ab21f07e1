"""What the SMS sends of one service cost, read from the journal: the price of a segment
when the provider has no price API, and the spending that says how long the balance lasts.

A send counts once the provider accepted it (`sent_at` is set), whatever became of it later:
an undelivered SMS is billed too. Its parts are the provider's own count (`provider_parts`)
where it reported one, else ours (`segments`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Notification

RECENT_SENDS = 50
"""How many of the latest sends with a recorded cost make the average price of a segment."""


@dataclass(frozen=True, slots=True)
class Spending:
    """The sends of one service since a moment."""

    cost: Decimal
    """What the sends with a recorded cost cost."""
    uncosted_parts: int
    """Parts of the sends whose cost the provider did not report (SMS.ru's send reply has
    none): the caller prices them."""
    first_sent_at: datetime | None
    """The earliest send in the window, None when there is none."""
    older_sends: bool
    """Whether the service sent anything before the window (so the window is all history)."""


def _parts() -> ColumnElement[int]:
    return func.coalesce(Notification.provider_parts, Notification.segments)


async def recent_cost_per_segment(
    session: AsyncSession, *, provider: str, last: int = RECENT_SENDS
) -> Decimal | None:
    """The cost of one segment over the last `last` sends of `provider` that recorded a
    cost: their total cost over their total parts (a two-part SMS weighs twice). None when
    no send recorded one."""
    recent = (
        select(Notification.cost.label("cost"), _parts().label("parts"))
        .where(
            Notification.provider == provider,
            Notification.sent_at.is_not(None),
            Notification.cost > 0,
            _parts() > 0,
        )
        .order_by(Notification.sent_at.desc(), Notification.id.desc())
        .limit(last)
        .subquery()
    )
    cost, parts = (
        await session.execute(select(func.sum(recent.c.cost), func.sum(recent.c.parts)))
    ).one()
    if cost is None or not parts:
        return None
    return Decimal(cost) / int(parts)


async def spending_since(session: AsyncSession, *, provider: str, since: datetime) -> Spending:
    """The sends of `provider` accepted at or after `since`."""
    in_window = (Notification.provider == provider, Notification.sent_at >= since)
    recorded = Notification.cost.is_not(None)
    cost, uncosted, first = (
        await session.execute(
            select(
                func.coalesce(func.sum(Notification.cost).filter(recorded), 0),
                func.coalesce(func.sum(_parts()).filter(~recorded), 0),
                func.min(Notification.sent_at),
            ).where(*in_window)
        )
    ).one()
    older = await session.scalar(
        select(Notification.id)
        .where(Notification.provider == provider, Notification.sent_at < since)
        .limit(1)
    )
    return Spending(
        cost=Decimal(cost or 0),
        uncosted_parts=int(uncosted),
        first_sent_at=first,
        older_sends=older is not None,
    )
