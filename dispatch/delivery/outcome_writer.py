"""Delivery outcomes, written by group commit.

Every finished attempt must reach the journal before the worker slot moves on, and one
transaction per attempt cost more than the provider call itself once the fakes answered at
once. Outcomes that are ready together share one transaction (`queue.finish_many`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.delivery.receipts import apply_parked_for
from dispatch.group_commit import GroupCommit
from storage import queue
from storage.database import Database
from storage.queue import Finish
from storage.statuses import Status
from storage.types import utcnow


class OutcomeWriter(GroupCommit[Finish, bool]):
    def __init__(self, db: Database, *, max_batch: int = 200) -> None:
        super().__init__(db, _finish, max_batch=max_batch, name="outcome-writer")

    async def record(self, item: Finish) -> bool:
        """Write `item`; True once committed, False when the lease had passed to another
        worker (nothing written). Raises what the database raised."""
        return await self.submit(item)


async def _finish(session: AsyncSession, items: Sequence[Finish]) -> list[bool]:
    """Record the outcomes; then apply any receipt a fast provider sent before this commit
    (parked by `dispatch.receipts`), in the same transaction."""
    results = await queue.finish_many(session, items)
    sent = [
        (str(item.fields["provider"]), str(item.fields["provider_message_id"]))
        for item, recorded in zip(items, results, strict=True)
        if recorded
        and item.to_status == Status.SENT
        and item.fields.get("provider_message_id")
        and item.fields.get("provider") not in (None, "telegram")
    ]
    if sent:
        await apply_parked_for(session, sent, now=utcnow())
    return results
