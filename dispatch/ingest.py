"""Accepting one ERP event: idempotency, directory upsert, planning, storing — one transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dispatch.catalogue import EVENT_TYPES
from dispatch.context import event_context
from dispatch.planner import Recipient, plan_notifications
from dispatch.render import Renderer
from dispatch.runtime_config import RuntimeConfig
from dispatch.schemas import EventIn
from storage import directory, events, notifications
from storage.database import Database
from storage.models import Notification
from storage.types import utcnow

logger = logging.getLogger(__name__)

ERP_ACTOR = "erp"


@dataclass(frozen=True, slots=True)
class NotificationSummary:
    id: int
    recipient: str
    channel: str | None
    status: str

    @classmethod
    def of(cls, row: Notification) -> NotificationSummary:
        return cls(id=row.id, recipient=row.recipient, channel=row.channel, status=row.status)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "recipient": self.recipient,
            "channel": self.channel,
            "status": self.status,
        }


@dataclass(frozen=True, slots=True)
class IngestResult:
    event_id: str
    duplicate: bool
    notifications: Sequence[NotificationSummary]

    def as_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "duplicate": self.duplicate,
            "notifications": [item.as_json() for item in self.notifications],
        }


class EventIngestor:
    """Stores ERP events and the notifications they create."""

    def __init__(
        self,
        *,
        db: Database,
        config: RuntimeConfig,
        renderer: Renderer,
        sms_available: bool,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._config = config
        self._renderer = renderer
        self._sms_available = sms_available
        self._on_queued = on_queued

    async def accept(self, event: EventIn, payload: dict[str, Any]) -> IngestResult:
        """Store `event` once; a repeated `event_id` returns the first call's notifications."""
        async with self._db.transaction() as session:
            event_pk = await events.insert_event_if_new(
                session,
                event_id=event.event_id,
                type_=event.type,
                occurred_at=event.occurred_at,
                client_id=event.client.id,
                payload=payload,
            )
            if event_pk is None:
                first = await events.get_event_by_event_id(session, event.event_id)
                rows = await notifications.list_for_event(session, first.id) if first else []
                return IngestResult(
                    event_id=event.event_id,
                    duplicate=True,
                    notifications=[NotificationSummary.of(row) for row in rows],
                )
            effective = await self._config.current(session)
            type_settings = effective.event_type(event.type)

            manager_record = None
            if event.manager is not None:
                await directory.upsert_manager(
                    session, event.manager.model_dump(exclude_unset=True)
                )
            client_values = event.client.model_dump(exclude_unset=True)
            if event.manager is not None and client_values.get("manager_id") is None:
                client_values["manager_id"] = event.manager.id
            is_new = await directory.upsert_client(session, client_values)
            if is_new:
                await directory.init_client_type_settings(
                    session,
                    event.client.id,
                    {
                        code: settings.default_for_new_clients
                        for code, settings in effective.event_types.items()
                    },
                )
            client_row = await directory.get_client(session, event.client.id)
            assert client_row is not None  # upserted above, in this transaction
            manager_id = client_row.manager_id
            manager_problem = None
            if manager_id is not None:
                manager_record = await directory.get_manager(session, manager_id)
                if manager_record is None:
                    manager_problem = f"responsible manager {manager_id!r} is unknown"
            override = await directory.get_client_type_setting(
                session, event.client.id, event.type
            )
            client_sends = (
                override.send
                if override is not None and override.send is not None
                else type_settings.default_for_new_clients
            )

            client = Recipient(
                kind="client",
                id=client_row.id,
                phone=client_row.phone,
                chat_ids=await directory.active_chat_ids(session, client_id=client_row.id)
                if effective.notify.service == "telegram"
                else (),
            )
            manager = None
            if manager_record is not None:
                manager = Recipient(
                    kind="manager",
                    id=manager_record.id,
                    phone=manager_record.phone,
                    chat_ids=await directory.active_chat_ids(session, manager_id=manager_record.id)
                    if effective.notify.service == "telegram"
                    else (),
                )

            context = event_context(
                event_id=event.event_id,
                event_type=event.type,
                occurred_at=event.occurred_at,
                client={
                    "id": client_row.id,
                    "name": client_row.name,
                    "phone": client_row.phone,
                    "manager_id": client_row.manager_id,
                    "category": client_row.category,
                    "blocked": client_row.blocked,
                },
                manager=None
                if manager_record is None
                else {
                    "id": manager_record.id,
                    "name": manager_record.name,
                    "phone": manager_record.phone,
                },
                document=event.document,
                notify=effective.notify,
            )
            template_client = (
                type_settings.template_client or EVENT_TYPES[event.type].template_client
            )
            template_manager = (
                type_settings.template_manager or EVENT_TYPES[event.type].template_manager
            )
            own_client = override.template_client if override is not None else None
            own_manager = override.template_manager if override is not None else None

            def render_client() -> str:
                if own_client:
                    return self._renderer.render_source(own_client, context)
                return self._renderer.render(template_client, context)

            def render_manager() -> str:
                if own_manager:
                    return self._renderer.render_source(own_manager, context)
                return self._renderer.render(template_manager, context)

            planned = plan_notifications(
                mode=effective.notify.mode,
                notify=effective.notify,
                type_settings=type_settings,
                client=client,
                client_sends=client_sends,
                manager=manager,
                manager_problem=manager_problem,
                render_client=render_client,
                render_manager=render_manager,
                sms_available=self._sms_available,
                now=utcnow(),
            )
            rows = [
                {"event_pk": event_pk, "event_type": event.type, **item.as_row()}
                for item in planned
            ]
            ids = await notifications.insert_notifications(session, rows, actor=ERP_ACTOR)
        summaries = [
            NotificationSummary(
                id=notification_id,
                recipient=item.recipient,
                channel=item.channel,
                status=item.status.value,
            )
            for notification_id, item in zip(ids, planned, strict=True)
        ]
        if self._on_queued is not None and any(item.status == "pending" for item in planned):
            self._on_queued()
        for item in planned:
            if item.status == "failed":
                logger.warning(
                    "event %s: %s notification failed to render: %s",
                    event.event_id,
                    item.recipient,
                    item.reason,
                )
        return IngestResult(event_id=event.event_id, duplicate=False, notifications=summaries)
