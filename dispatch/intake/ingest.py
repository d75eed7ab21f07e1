"""Accepting one ERP event: idempotency, directory upsert, planning, storing — one transaction."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.catalogue import EVENT_TYPES
from dispatch.delivery.wakeup import lane_of
from dispatch.group_commit import GroupCommit
from dispatch.intake import quiet_hours
from dispatch.intake.clients import save_clients
from dispatch.intake.context import event_context
from dispatch.intake.planner import PlannedNotification, Recipient, plan_notifications
from dispatch.intake.schemas import EventIn, ManagerIn
from dispatch.ops.log_summary import WindowSummary
from dispatch.render.library import (
    NO_STORED_TEMPLATES,
    StoredTemplates,
    TemplateSet,
    TextRender,
    telegram_render,
    text_render,
)
from dispatch.render.renderer import Renderer
from dispatch.runtime_config import EffectiveConfig, RuntimeConfig
from storage import directory, events, links, notifications
from storage.database import Database
from storage.directory import ClientRecord, ManagerRecord
from storage.links import UsableChats
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


@dataclass(frozen=True, slots=True)
class _Stored:
    result: IngestResult
    planned: Sequence[PlannedNotification]


def _shallow(record: ClientRecord | ManagerRecord) -> dict[str, Any]:
    """The record's fields as a dict (they are plain values: `asdict`'s deep copy of each
    one cost more than the rest of building the template context)."""
    return {field.name: getattr(record, field.name) for field in fields(record)}


def _manager_of(event: EventIn) -> ManagerIn:
    assert event.manager is not None
    return event.manager


def _client_values(event: EventIn, manager: ManagerRecord | None) -> dict[str, Any]:
    """The client card fields this event gives (the event's manager is the client's
    responsible one unless the client names another)."""
    # The time zone counts for this event's quiet hours only: the card does not keep it.
    values = event.client.model_dump(exclude_unset=True, exclude={"timezone"})
    if values.get("blocked", False) is None:
        del values["blocked"]  # null: not given (the card keeps its value)
    if manager is not None and values.get("manager_id") is None:
        values["manager_id"] = manager.id
    return values


def _describe_events(seconds: float) -> Callable[[Counter[str]], str]:
    def describe(counts: Counter[str]) -> str:
        return (
            f"ERP events in the last {seconds:g} s: {counts['accepted']} accepted "
            f"({counts['notifications']} notification(s)), {counts['duplicates']} duplicate(s)"
        )

    return describe


class EventIngestor:
    """Stores ERP events and the notifications they create."""

    def __init__(
        self,
        *,
        db: Database,
        config: RuntimeConfig,
        renderer: Renderer,
        sms_available: bool,
        on_queued: Callable[[Collection[str]], None] | None = None,
        flushers: int = 1,
        summary_seconds: float = 60.0,
        templates: StoredTemplates | None = None,
    ) -> None:
        """`flushers`: how many batches may be written at once, each on its own connection
        (round trips of one overlap the Python work of the others). `summary_seconds`: the
        window of the INFO summary line (events accepted in it), logged after the first
        event of a window; events are logged one by one at DEBUG only. `templates`: the
        versions saved through the API, looked up once per batch."""
        self._summary = WindowSummary(logger, summary_seconds, _describe_events(summary_seconds))
        self._config = config
        self._renderer = renderer
        self._templates = templates or StoredTemplates()
        self._sms_available = sms_available
        self._on_queued = on_queued
        self._observers: list[Callable[[Sequence[NotificationSummary]], None]] = []
        self._commits = GroupCommit(
            db,
            self._store_all,
            max_batch=100,
            flushers=flushers,
            name="ingest",
        )

    @property
    def transactions(self) -> int:
        """Transactions that stored events so far (for tests and benchmarks)."""
        return self._commits.transactions

    def subscribe(self, observer: Callable[[Sequence[NotificationSummary]], None]) -> None:
        """Call `observer` with the notifications of every new event, after its commit
        (the bot uses it to prompt managers about confirmations)."""
        self._observers.append(observer)

    async def accept(self, event: EventIn, payload: dict[str, Any]) -> IngestResult:
        """Store `event` once; a repeated `event_id` returns the first call's notifications.

        Returns once the event is committed. Events arriving together are stored in one
        transaction (group commit), each exactly as if alone.
        """
        stored = await self._commits.submit((event, payload))
        summaries = stored.result.notifications
        if stored.result.duplicate:
            self._summary.count("duplicates")
            return stored.result
        self._summary.count("accepted")
        self._summary.count("notifications", len(summaries))
        self._after_commit(event, stored.planned)
        if summaries:
            for observer in self._observers:
                try:
                    observer(summaries)
                except Exception:
                    logger.exception("an ingest observer failed (the event is stored)")
        return stored.result

    async def _store_all(
        self, session: AsyncSession, items: Sequence[tuple[EventIn, dict[str, Any]]]
    ) -> list[_Stored]:
        """Store a batch of events in the current transaction, each as if alone.

        A few statements per batch, not per event: the events in one INSERT, managers and
        clients in multi-row upserts, one read each for what planning needs, the
        notifications and their history in one INSERT each.

        The rows that concurrent transactions may both lock (an event id, a manager, a
        client) are written in phases, each in key order: events, then managers, then
        clients. Every batch of every replica takes its locks in the same global order, so
        two batches sharing managers wait for each other instead of deadlocking. Within a
        key, arrival order is kept: a client's later event updates its card after the
        earlier one, and each event plans with the card as its own values left it.
        """
        effective = await self._config.current(session)
        arrivals = range(len(items))
        first_of: dict[str, int] = {}  # event_id -> its first arrival in this batch
        for i in sorted(arrivals, key=lambda i: items[i][0].event_id):
            first_of.setdefault(items[i][0].event_id, i)
        inserted = await events.insert_events_if_new(
            session,
            [
                {
                    "event_id": items[i][0].event_id,
                    "type": items[i][0].type,
                    "occurred_at": items[i][0].occurred_at,
                    "client_id": items[i][0].client.id,
                    "payload": items[i][1],
                }
                for i in first_of.values()
            ],
        )
        event_pks = {
            i: inserted.get(items[i][0].event_id) if first_of[items[i][0].event_id] == i else None
            for i in arrivals
        }
        new = [i for i in arrivals if event_pks[i] is not None]

        managers = await directory.upsert_managers(
            session,
            [
                (i, _manager_of(items[i][0]).model_dump(exclude_unset=True))
                for i in new
                if items[i][0].manager is not None
            ],
        )
        clients = await save_clients(
            session,
            [(i, _client_values(items[i][0], managers.get(i))) for i in new],
            effective,
        )

        stored_templates = await self._templates.current(session) if new else NO_STORED_TEMPLATES
        planned = await self._plan_all(
            session,
            effective,
            stored_templates,
            {i: items[i][0] for i in new},
            managers,
            clients,
        )
        stored = await self._insert_all(session, items, event_pks, planned)
        # Last: a repeat of an event stored earlier in this batch finds its notifications.
        for i in arrivals:
            if i not in stored:
                stored[i] = _Stored(await self._duplicate(session, items[i][0].event_id), ())
        return [stored[i] for i in arrivals]

    async def _plan_all(
        self,
        session: AsyncSession,
        effective: EffectiveConfig,
        stored_templates: TemplateSet,
        new: Mapping[int, EventIn],
        upserted_managers: Mapping[int, ManagerRecord],
        clients: Mapping[int, tuple[ClientRecord, bool]],
    ) -> dict[int, list[PlannedNotification]]:
        """Plan every new event of the batch; what planning reads from the database (the
        responsible managers, per-client overrides, usable chats) in one query each."""
        managers: dict[int, ManagerRecord | None] = {}
        missing: set[str] = set()
        for i in new:
            client, _ = clients[i]
            manager = upserted_managers.get(i)
            if client.manager_id is None:
                managers[i] = None
            elif manager is not None and manager.id == client.manager_id:
                managers[i] = manager
            else:
                missing.add(client.manager_id)
        found = await directory.get_manager_records(session, missing)
        for i in new:
            client, _ = clients[i]
            if i not in managers and client.manager_id is not None:
                managers[i] = found.get(client.manager_id)

        overrides = await directory.get_type_overrides(
            session, {(clients[i][0].id, new[i].type) for i in new if not clients[i][1]}
        )
        chats = UsableChats()
        if effective.notify.service == "telegram":
            chats = await links.usable_chats_many(
                session,
                client_ids={clients[i][0].id for i in new},
                manager_ids={m.id for m in managers.values() if m is not None},
            )
        planned: dict[int, list[PlannedNotification]] = {}
        for i, event in new.items():
            client, _ = clients[i]
            manager = managers[i]
            override = overrides.get((client.id, event.type))
            # A client's own template or a saved version is an admin's text: its render may
            # run up to the render deadline, so it runs in a thread and the loop keeps
            # serving meanwhile. The packaged texts take microseconds and stay inline.
            own_template = (
                override is not None and bool(override[1] or override[2])
            ) or stored_templates.has_type(event.type)
            plan = functools.partial(
                self._plan,
                event,
                effective,
                stored_templates,
                client=client,
                manager=manager,
                manager_problem=None
                if client.manager_id is None or manager is not None
                else f"responsible manager {client.manager_id!r} is unknown",
                override=override,
                client_chats=chats.clients.get(client.id, []),
                manager_chats=[] if manager is None else chats.managers.get(manager.id, []),
            )
            planned[i] = await asyncio.to_thread(plan) if own_template else plan()
        return planned

    async def _insert_all(
        self,
        session: AsyncSession,
        items: Sequence[tuple[EventIn, dict[str, Any]]],
        event_pks: Mapping[int, int | None],
        planned: Mapping[int, Sequence[PlannedNotification]],
    ) -> dict[int, _Stored]:
        """The notifications of every new event (and their first history rows), in one
        INSERT each; returns what each event's caller is answered."""
        rows = [
            {"event_pk": event_pks[i], "event_type": items[i][0].type, **item.as_row()}
            for i, plan in planned.items()
            for item in plan
        ]
        ids = iter(await notifications.insert_notifications(session, rows, actor=ERP_ACTOR))
        stored: dict[int, _Stored] = {}
        for i, plan in planned.items():
            event = items[i][0]
            summaries = [
                NotificationSummary(
                    id=next(ids),
                    recipient=item.recipient,
                    channel=item.channel,
                    status=item.status.value,
                )
                for item in plan
            ]
            result = IngestResult(
                event_id=event.event_id, duplicate=False, notifications=summaries
            )
            stored[i] = _Stored(result, plan)
        return stored

    async def _duplicate(self, session: AsyncSession, event_id: str) -> IngestResult:
        first = await events.get_event_by_event_id(session, event_id)
        rows = await notifications.list_for_event(session, first.id) if first else []
        return IngestResult(
            event_id=event_id,
            duplicate=True,
            notifications=[NotificationSummary.of(row) for row in rows],
        )

    def _plan(
        self,
        event: EventIn,
        effective: EffectiveConfig,
        stored_templates: TemplateSet,
        *,
        client: ClientRecord,
        manager: ManagerRecord | None,
        manager_problem: str | None,
        override: tuple[bool | None, str | None, str | None] | None,
        client_chats: list[int],
        manager_chats: list[int],
    ) -> list[PlannedNotification]:
        """Plan who gets what, with the directory as this event's upserts left it."""
        type_settings = effective.event_type(event.type)
        catalogue = EVENT_TYPES[event.type]
        sends, own_client, own_manager = override or (None, None, None)
        if sends is None:
            sends = type_settings.default_for_new_clients

        context = event_context(
            event_id=event.event_id,
            event_type=event.type,
            occurred_at=event.occurred_at,
            client=_shallow(client),
            manager=_shallow(manager) if manager is not None else None,
            document=event.document,
            notify=effective.notify,
        )
        renderer = self._renderer

        def text_of(own: str | None, recipient: str, template: str) -> Callable[[], str]:
            if own:
                return lambda: renderer.render_source(own, context)
            render = text_render(renderer, stored_templates, event.type, recipient, template)
            return lambda: render(context)

        def telegram_of(own: str | None, recipient: str) -> Callable[[], str] | None:
            # A client's own text goes by every route: it is what was asked for this client.
            render: TextRender | None = None
            if not own:
                render = telegram_render(renderer, stored_templates, event.type, recipient)
            if render is None:
                return None
            return functools.partial(render, context)

        now = utcnow()
        return plan_notifications(
            mode=effective.notify.mode,
            notify=effective.notify,
            type_settings=type_settings,
            client=Recipient("client", client.id, client.phone, client_chats),
            client_sends=sends,
            manager=None
            if manager is None
            else Recipient("manager", manager.id, manager.phone, manager_chats),
            manager_problem=manager_problem,
            render_client=text_of(
                own_client, "client", type_settings.template_client or catalogue.template_client
            ),
            render_manager=text_of(
                own_manager,
                "manager",
                type_settings.template_manager or catalogue.template_manager,
            ),
            render_client_telegram=telegram_of(own_client, "client"),
            render_manager_telegram=telegram_of(own_manager, "manager"),
            # The directory at run time, not the file's: services come and go by the API.
            sms_available=bool(effective.sms_directory),
            now=now,
            client_held=None
            if type_settings.urgent
            else quiet_hours.hold(
                quiet_hours.parse_window(effective.notify.quiet_hours),
                event.client.timezone or effective.notify.timezone,
                now,
            ),
        )

    def _after_commit(self, event: EventIn, planned: Sequence[PlannedNotification]) -> None:
        lanes = {lane_of(item.channel) for item in planned if item.status == "pending"}
        if self._on_queued is not None and lanes:
            self._on_queued(lanes)
        for item in planned:
            if item.status == "failed":
                logger.warning(
                    "event %s: %s notification failed to render: %s",
                    event.event_id,
                    item.recipient,
                    item.reason,
                )
