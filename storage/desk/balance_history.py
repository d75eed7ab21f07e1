"""The balance checks the desk draws: one service's readings since a time, oldest first."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import BalanceCheck

MAX_POINTS = 1000
"""The balance job reads every few minutes; a chart needs no more points than pixels."""


async def checks_since(
    session: AsyncSession, provider: str, since: datetime
) -> list[BalanceCheck]:
    """The newest `MAX_POINTS` checks of `provider` since `since`, oldest first."""
    newest = (
        select(BalanceCheck)
        .where(BalanceCheck.provider == provider, BalanceCheck.checked_at >= since)
        .order_by(BalanceCheck.checked_at.desc(), BalanceCheck.id.desc())
        .limit(MAX_POINTS)
    )
    return sorted((await session.execute(newest)).scalars(), key=lambda c: (c.checked_at, c.id))
