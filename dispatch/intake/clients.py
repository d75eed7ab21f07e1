"""The client directory as the domain sees it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.runtime_config import EffectiveConfig
from storage import directory
from storage.directory import ClientRecord

T = TypeVar("T")


async def save_client(
    session: AsyncSession, values: Mapping[str, Any], effective: EffectiveConfig
) -> tuple[ClientRecord, bool]:
    """Upsert a client; a new one gets its «Отправлять уведомление» flag per event type
    from each type's `default_for_new_clients` (fixed now, as the seed describes)."""
    return (await save_clients(session, [(0, values)], effective))[0]


async def save_clients(
    session: AsyncSession,
    entries: Sequence[tuple[T, Mapping[str, Any]]],
    effective: EffectiveConfig,
) -> dict[T, tuple[ClientRecord, bool]]:
    """`save_client` for many (tag, values) entries, in arrival order, with few statements."""
    saved = await directory.upsert_clients(session, entries)
    created = {record.id for record, is_new in saved.values() if is_new}
    await directory.init_client_type_settings(
        session,
        created,
        {
            code: settings.default_for_new_clients
            for code, settings in effective.event_types.items()
        },
    )
    return saved
