"""The ERP posts events to the webhook (CONTRACT §2), as the ERP would."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, select

from handlers.common import signature
from storage.models import Client, Event, Manager, Notification, NotificationHistory
from tests.conftest import WEBHOOK_SECRET, Service
from tests.events import ALL_TYPES, make_event


async def count(service: Service, model: type) -> int:
    async with service.db.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_order_ready_event_is_journaled_in_test_mode(service: Service) -> None:
    status, body = await service.post_event(make_event("client_order.ready", event_id="erp-1"))

    assert status == 202
    assert body["event_id"] == "erp-1"
    assert body["duplicate"] is False
    assert [(n["recipient"], n["status"]) for n in body["notifications"]] == [("client", "test")]
    async with service.db.sessions() as session:
        note = await session.get(Notification, body["notifications"][0]["id"])
        client = await session.get(Client, "C-1001")
        manager = await session.get(Manager, "M-7")
    assert note is not None
    assert "ЗК-000123" in (note.text or "")
    assert note.encoding == "ucs2"
    assert note.segments is not None and note.segments >= 1
    assert note.units == len((note.text or "").encode("utf-16-le")) // 2
    assert client is not None and client.phone == "+79161234567"
    assert client.manager_id == "M-7"
    assert manager is not None and manager.name == "Иван Петров"


@pytest.mark.parametrize("event_type", ALL_TYPES)
async def test_every_event_type_gets_russian_text_and_segment_figures(
    service: Service, event_type: str
) -> None:
    status, body = await service.post_event(make_event(event_type))

    assert status == 202, body
    assert body["notifications"], "each type sends to the client by default"
    async with service.db.sessions() as session:
        rows = (
            (
                await session.execute(
                    select(Notification).where(Notification.event_type == event_type)
                )
            )
            .scalars()
            .all()
        )
    assert len(rows) == 1
    row = rows[0]
    assert row.status == "test"
    assert row.text and any("а" <= ch <= "я" for ch in row.text.lower())
    assert row.encoding == "ucs2" and row.units and row.segments


async def test_duplicate_event_returns_first_notifications_and_creates_nothing(
    service: Service,
) -> None:
    event = make_event(event_id="erp-dup")
    first_status, first = await service.post_event(event)
    second_status, second = await service.post_event(event)

    assert (first_status, second_status) == (202, 200)
    assert second["duplicate"] is True
    assert second["notifications"] == first["notifications"]
    assert await count(service, Event) == 1
    assert await count(service, Notification) == 1
    assert await count(service, NotificationHistory) == 1


async def test_mode_off_stores_the_event_but_no_notification(service: Service) -> None:
    status, _ = await service.admin("PUT", "/api/v1/settings", json_body={"mode": "off"})
    assert status == 200

    status, body = await service.post_event(make_event(event_id="erp-off"))
    again, body_again = await service.post_event(make_event(event_id="erp-off"))

    assert status == 202 and body["notifications"] == []
    assert again == 200 and body_again["duplicate"] is True
    assert await count(service, Event) == 1
    assert await count(service, Notification) == 0


async def test_manager_omitted_uses_the_known_responsible_manager(service: Service) -> None:
    await service.admin(
        "PUT", "/api/v1/event-types/client_order.ready", json_body={"send_to_manager": True}
    )
    await service.post_event(make_event(event_id="erp-a"))
    status, body = await service.post_event(make_event(event_id="erp-b", manager=None))

    assert status == 202
    assert sorted(n["recipient"] for n in body["notifications"]) == ["client", "manager"]
    assert all(n["status"] == "test" for n in body["notifications"])


# --- each error case of CONTRACT §2 -------------------------------------------------------


def _error(body: dict[str, object], code: str) -> None:
    assert set(body) == {"error"}
    error = body["error"]
    assert isinstance(error, dict)
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], list)
    assert "Traceback" not in json.dumps(body)
    assert WEBHOOK_SECRET not in json.dumps(body)


async def test_malformed_json_is_400(service: Service) -> None:
    status, body = await service.post_event(b'{"event_id": "x", ')
    assert status == 400
    _error(body, "invalid_json")


async def test_invalid_utf8_is_400(service: Service) -> None:
    status, body = await service.post_event(b'{"event_id": "\xff\xfe"}')
    assert status == 400
    _error(body, "invalid_json")


async def test_missing_signature_is_401(service: Service) -> None:
    status, body = await service.post_event(make_event(), secret=None)
    assert status == 401
    _error(body, "invalid_signature")


async def test_wrong_secret_is_401(service: Service) -> None:
    status, body = await service.post_event(make_event(), secret="not-the-secret")
    assert status == 401
    _error(body, "invalid_signature")


async def test_stale_signature_is_401(service: Service) -> None:
    raw = json.dumps(make_event()).encode()
    old = signature.sign(WEBHOOK_SECRET, raw, timestamp=int(time.time()) - 301)
    status, body = await service.post_event(raw, headers={signature.HEADER: old})
    assert status == 401
    _error(body, "invalid_signature")
    assert "window" in body["error"]["message"]


async def test_signature_of_another_body_is_401(service: Service) -> None:
    raw = json.dumps(make_event()).encode()
    other = signature.sign(WEBHOOK_SECRET, raw + b" ")
    status, body = await service.post_event(raw, headers={signature.HEADER: other})
    assert status == 401
    _error(body, "invalid_signature")


async def test_body_over_256_kib_is_413(service: Service) -> None:
    event = make_event()
    event["document"]["extra"] = {"blob": "x" * (256 * 1024)}
    status, body = await service.post_event(event)
    assert status == 413
    _error(body, "payload_too_large")
    assert await count(service, Event) == 0


async def test_not_json_is_415(service: Service) -> None:
    status, body = await service.post_event(
        json.dumps(make_event()).encode(), headers={"Content-Type": "text/plain"}
    )
    assert status == 415
    _error(body, "unsupported_media_type")


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda e: e.pop("event_id"), "event_id"),
        (lambda e: e.update(event_id="x" * 129), "event_id"),
        (lambda e: e.update(type="order.unknown"), "type"),
        (lambda e: e.update(occurred_at="yesterday"), "occurred_at"),
        (lambda e: e["client"].pop("id"), "client"),
        (lambda e: e.update(document=[1, 2]), "document"),
        (lambda e: e["client"].update(phone="call me maybe"), "client"),
        (lambda e: e["manager"].update(phone="12"), "manager"),
    ],
)
async def test_schema_and_value_errors_are_422(service: Service, mutate, where: str) -> None:  # type: ignore[no-untyped-def]
    event = make_event()
    mutate(event)
    status, body = await service.post_event(event)
    assert status == 422
    _error(body, "validation_error")
    assert any(detail["loc"][0] == where for detail in body["error"]["details"])
    assert await count(service, Event) == 0


async def test_array_body_is_422(service: Service) -> None:
    status, body = await service.post_event(b"[]")
    assert status == 422
    _error(body, "validation_error")


async def test_database_down_is_503(service: Service) -> None:
    await service.db.engine.dispose()
    service.db.engine.url  # noqa: B018 - the engine object stays, only its pool goes
    # Point the pool at a port nobody listens on: the next checkout fails to connect.
    from storage.database import create_database

    broken = create_database(
        "postgresql+asyncpg://postgres@127.0.0.1:1/none"
        if service.db.dialect == "postgresql"
        else "sqlite+aiosqlite:////nonexistent-dir/vestnik.db"
    )
    service.db.engine = broken.engine
    service.db.sessions = broken.sessions
    status, body = await service.post_event(make_event())
    assert status == 503
    _error(body, "storage_unavailable")
    ready = await service.client.get("/readyz")
    assert ready.status == 503
