"""Settings stored by the settings API: one JSON document per key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete as sa_delete
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import StoredSetting
from storage.types import utcnow
from storage.upsert import insert_for


async def load_all(session: AsyncSession) -> dict[str, dict[str, Any]]:
    result = await session.execute(select(StoredSetting.key, StoredSetting.value))
    return {key: value for key, value in result.all()}  # noqa: C416 - rows, not pairs


async def save(session: AsyncSession, key: str, value: dict[str, Any], *, actor: str) -> None:
    now = utcnow()
    await session.execute(
        insert_for(session, StoredSetting)
        .values(key=key, value=value, updated_at=now, updated_by=actor)
        .on_conflict_do_update(
            index_elements=[StoredSetting.key],
            set_={"value": value, "updated_at": now, "updated_by": actor},
        )
    )


async def delete(session: AsyncSession, key: str) -> None:
    await session.execute(sa_delete(StoredSetting).where(StoredSetting.key == key))
