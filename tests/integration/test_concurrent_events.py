"""The ERP retries: identical requests arriving at the same moment create one event."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from storage.models import Client, ClientTypeSetting, Event, Notification
from tests.conftest import Service
from tests.events import make_event


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
async def test_simultaneous_duplicates_create_one_set_of_notifications(service: Service) -> None:
    event = make_event("client_order.ready", event_id="erp-race-1")
    event_two = make_event("payment.registered", event_id="erp-race-2")

    results = await asyncio.gather(
        *(service.post_event(event) for _ in range(12)),
        *(service.post_event(event_two) for _ in range(12)),
    )

    for batch in (results[:12], results[12:]):
        statuses = sorted(status for status, _ in batch)
        assert statuses == [200] * 11 + [202]
        first = next(body for status, body in batch if status == 202)
        for status, body in batch:
            assert body["notifications"] == first["notifications"]
            assert body["duplicate"] is (status == 200)
    async with service.db.sessions() as session:
        events = (await session.execute(select(func.count()).select_from(Event))).scalar_one()
        notes = (
            await session.execute(select(func.count()).select_from(Notification))
        ).scalar_one()
        clients = (await session.execute(select(func.count()).select_from(Client))).scalar_one()
        flags = (
            await session.execute(select(func.count()).select_from(ClientTypeSetting))
        ).scalar_one()
    assert (events, notes, clients, flags) == (2, 2, 1, 16)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_many_new_clients_at_once_on_postgresql(service: Service) -> None:
    """Different events racing on shared directory rows (one manager) all land."""
    bodies = [
        make_event(
            event_id=f"erp-many-{i}",
            client={
                "id": f"C-{i % 5}",
                "name": f"Клиент {i % 5}",
                "phone": "+79161234567",
                "manager_id": "M-7",
            },
        )
        for i in range(40)
    ]
    results = await asyncio.gather(*(service.post_event(body) for body in bodies))
    assert [status for status, _ in results] == [202] * 40
    async with service.db.sessions() as session:
        clients = (await session.execute(select(func.count()).select_from(Client))).scalar_one()
        notes = (
            await session.execute(select(func.count()).select_from(Notification))
        ).scalar_one()
    assert (clients, notes) == (5, 40)
