"""The client directory as the domain sees it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.runtime_config import EffectiveConfig
from storage import directory
from storage.directory import ClientRecord


async def save_client(
    session: AsyncSession, values: Mapping[str, Any], effective: EffectiveConfig
) -> tuple[ClientRecord, bool]:
    """Upsert a client; a new one gets its «Отправлять уведомление» flag per event type
    from each type's `default_for_new_clients` (fixed now, as the seed describes)."""
    record, created = await directory.upsert_client(session, values)
    if created:
        await directory.init_client_type_settings(
            session,
            record.id,
            {
                code: settings.default_for_new_clients
                for code, settings in effective.event_types.items()
            },
        )
    return record, created
