"""The template context of one event: what every template may use."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dispatch.catalogue import EVENT_TYPES
from dispatch.config import NotifySettings
from dispatch.render.renderer import build_context


def event_context(
    *,
    event_id: str,
    event_type: str,
    occurred_at: datetime,
    client: Mapping[str, Any],
    manager: Mapping[str, Any] | None,
    document: Mapping[str, Any],
    notify: NotifySettings,
) -> dict[str, Any]:
    """`event`, `client`, `manager`, `document` and `company`, as the templates see them."""
    return build_context(
        event={
            "event_id": event_id,
            "type": event_type,
            "title": EVENT_TYPES[event_type].title,
            "occurred_at": occurred_at.isoformat(),
        },
        client={
            "id": client.get("id"),
            "name": client.get("name"),
            "phone": client.get("phone"),
            "manager_id": client.get("manager_id"),
            "category": client.get("category"),
            "blocked": client.get("blocked"),
        },
        manager=None
        if manager is None
        else {"id": manager.get("id"), "name": manager.get("name"), "phone": manager.get("phone")},
        document=document,
        company={"name": notify.company_name, "phone": notify.company_phone},
    )
