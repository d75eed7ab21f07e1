"""Delivery outcomes, written by group commit.

Every finished attempt must reach the journal before the worker slot moves on, and one
transaction per attempt cost more than the provider call itself once the fakes answered at
once. Outcomes that are ready together share one transaction (`queue.finish_many`).

The same transaction also claims the rows that take over the freed slots (`Refill`): a
slot's row leaves `sending` and its successor enters it in one commit, so the rows in
`sending` never outnumber the slots, and a busy worker needs no claim transaction of its
own between an outcome and its next send (measured: the claim, the sends and the outcome
commit otherwise ran one after another, each batch waiting for the previous stage).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.delivery.receipts import apply_parked_for
from dispatch.group_commit import AfterCommit, GroupCommit
from storage import queue
from storage.database import Database
from storage.queue import Finish
from storage.statuses import Status
from storage.types import utcnow


class Refill(Protocol):
    """Who gets the slots an outcome frees (a worker)."""

    async def refill(self, session: AsyncSession, freed: int) -> AfterCommit | None:
        """Claim up to `freed` successors in the outcome's transaction; the callable hands
        them over once it committed (or forgets them when it did not)."""
        ...


@dataclass(frozen=True, slots=True)
class _Entry:
    finish: Finish
    refill: Refill | None


class OutcomeWriter(GroupCommit[_Entry, bool]):
    def __init__(self, db: Database, *, max_batch: int = 200) -> None:
        super().__init__(db, _finish, max_batch=max_batch, name="outcome-writer")

    async def record(self, item: Finish, *, refill: Refill | None = None) -> bool:
        """Write `item`; True once committed, False when the lease had passed to another
        worker (nothing written). Raises what the database raised. `refill` claims a
        successor for the slot in the same transaction when the item is written."""
        return await self.submit(_Entry(item, refill))

    async def _also(
        self, session: AsyncSession, items: Sequence[_Entry], results: Sequence[bool]
    ) -> AfterCommit | None:
        freed: dict[Refill, int] = {}
        for entry, recorded in zip(items, results, strict=True):
            if recorded and entry.refill is not None:
                freed[entry.refill] = freed.get(entry.refill, 0) + 1
        settles = [
            settle
            for refill, count in freed.items()
            if (settle := await refill.refill(session, count)) is not None
        ]
        if not settles:
            return None

        def settle_all(committed: bool) -> None:
            for settle in settles:
                settle(committed)

        return settle_all


async def _finish(session: AsyncSession, entries: Sequence[_Entry]) -> list[bool]:
    """Record the outcomes; then apply any receipt a fast provider sent before this commit
    (parked by `dispatch.receipts`), in the same transaction."""
    items = [entry.finish for entry in entries]
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
