"""The ERP retries: identical requests arriving at the same moment create one event."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from dispatch.intake.schemas import EventIn
from handlers.common.keys import INGESTOR
from storage.models import Client, ClientTypeSetting, Event, Notification
from tests.conftest import Service, make_settings, start_service
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


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_two_replicas_batches_sharing_managers_do_not_deadlock(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Each replica writes the events that arrive together in one transaction. Replica A's
    batch names managers M-1 then M-2, replica B's M-2 then M-1: taken in arrival order
    those row locks would deadlock (PostgreSQL breaks it after deadlock_timeout, and the
    batch is written again one by one); taken in key order, one batch simply waits."""
    replicas = [await start_service(make_settings(database_url)) for _ in range(2)]

    def event(n: int, manager: str) -> EventIn:
        body = make_event(
            event_id=f"erp-lock-{n}",
            client={"id": f"C-{n}", "name": f"Клиент {n}", "phone": "+79161234567"},
            manager={"id": manager, "name": f"Менеджер {manager}", "phone": "+79031234567"},
        )
        return EventIn.model_validate(body)

    try:
        a, b = (replica.app[INGESTOR] for replica in replicas)
        for round_ in range(5):
            n = round_ * 4
            results = await asyncio.gather(
                a.accept(event(n, "M-1"), {}),
                a.accept(event(n + 1, "M-2"), {}),
                b.accept(event(n + 2, "M-2"), {}),
                b.accept(event(n + 3, "M-1"), {}),
            )
            assert [result.duplicate for result in results] == [False] * 4
        assert (a.transactions, b.transactions) == (5, 5)  # one batch per replica per round
    finally:
        for replica in replicas:
            await replica.client.close()
    assert "writing them one by one" not in caplog.text


PHONE_TWO = "+79160000002"


async def test_one_batch_with_the_same_client_twice_plans_each_event_with_its_own_card(
    service: Service,
) -> None:
    """Events that arrive together share a transaction; each still sees the client card as
    its own event left it, the later one's values win on the card, and a new client's
    flags are fixed once."""
    status, body = await service.admin(
        "PUT", "/api/v1/event-types/client_order.ready", json_body={"send_to_manager": True}
    )
    assert status == 200, body
    ingestor = service.app[INGESTOR]

    def event(n: int, client: dict[str, str]) -> EventIn:
        return EventIn.model_validate(make_event(event_id=f"erp-batch-{n}", client=client))

    results = await asyncio.gather(
        ingestor.accept(event(1, {"id": "C-9", "name": "Первое имя"}), {}),
        ingestor.accept(
            event(2, {"id": "C-9", "name": "Второе имя", "phone": "+79160000002"}), {}
        ),
        ingestor.accept(event(3, {"id": "C-8", "name": "Другой", "category": "Опт"}), {}),
        ingestor.accept(event(1, {"id": "C-9", "name": "Первое имя"}), {}),  # a repeat
    )

    assert ingestor.transactions == 1  # all four in one transaction
    assert [r.duplicate for r in results] == [False, False, False, True]
    assert results[3].notifications == results[0].notifications
    texts = {}
    async with service.db.sessions() as session:
        for result in results[:3]:
            [manager_note] = [n for n in result.notifications if n.recipient == "manager"]
            row = await session.get(Notification, manager_note.id)
            assert row is not None
            texts[result.event_id] = row.text or ""
        card = await session.get(Client, "C-9")
        flags = (
            await session.execute(
                select(func.count())
                .select_from(ClientTypeSetting)
                .where(ClientTypeSetting.client_id == "C-9")
            )
        ).scalar_one()
    assert "Клиент: Первое имя." in texts["erp-batch-1"]
    assert f"Клиент: Второе имя, {PHONE_TWO}." in texts["erp-batch-2"]
    assert "Клиент: Другой." in texts["erp-batch-3"]
    assert card is not None and (card.name, card.phone) == ("Второе имя", PHONE_TWO)
    assert flags == 16
