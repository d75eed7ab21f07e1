"""Delivery outcomes, written by group commit.

Every finished attempt must reach the journal before the worker slot moves on, and one
transaction per attempt cost more than the provider call itself once the fakes answered at
once. Outcomes that are ready together share one transaction (`queue.finish_many`).
"""

from __future__ import annotations

from dispatch.group_commit import GroupCommit
from storage import queue
from storage.database import Database
from storage.queue import Finish


class OutcomeWriter(GroupCommit[Finish, bool]):
    def __init__(self, db: Database, *, max_batch: int = 200) -> None:
        super().__init__(db, queue.finish_many, max_batch=max_batch, name="outcome-writer")

    async def record(self, item: Finish) -> bool:
        """Write `item`; True once committed, False when the lease had passed to another
        worker (nothing written). Raises what the database raised."""
        return await self.submit(item)
