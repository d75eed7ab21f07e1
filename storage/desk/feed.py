"""The journal's changes in the order they were written, for the desk's live pages.

Every change of a notification (its creation included) is a history row, and history ids
grow, so "what changed since history id N" is one range read on the primary key, whichever
process or replica made the change.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import NotificationHistory


async def last_change(session: AsyncSession) -> int:
    """The newest history id (0 for an empty journal)."""
    return int(await session.scalar(select(func.max(NotificationHistory.id))) or 0)


async def changes_after(
    session: AsyncSession, history_id: int, *, limit: int
) -> list[tuple[int, int]]:
    """(history id, notification id) of the changes after `history_id`, oldest first."""
    result = await session.execute(
        select(NotificationHistory.id, NotificationHistory.notification_id)
        .where(NotificationHistory.id > history_id)
        .order_by(NotificationHistory.id)
        .limit(limit)
    )
    return [(row[0], row[1]) for row in result.all()]
