"""The API answers JSON in UTF-8: an operator reading it with curl sees «Заказ», not
`\\u0417\\u0430…`. Journal rows, error bodies, the settings, the event types and the OpenAPI
document alike."""

from __future__ import annotations

import json

from tests.conftest import ADMIN_TOKEN, Service
from tests.events import make_event

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ESCAPED_CYRILLIC = b"\\u04"  # what ensure_ascii makes of U+0400-U+04FF


async def get_utf8(service: Service, path: str, status: int = 200) -> bytes:
    """GET `path` as an admin; the body as sent, checked to be declared and parsed as UTF-8
    JSON without a single escaped Cyrillic letter."""
    response = await service.client.get(path, headers=AUTH)
    assert response.status == status
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    raw = await response.read()
    json.loads(raw.decode("utf-8"))
    assert ESCAPED_CYRILLIC not in raw
    return raw


async def test_the_journal_answers_russian_texts_as_utf8(service: Service) -> None:
    status, body = await service.post_event(make_event("client_order.ready"))
    assert status == 202, body
    [note] = body["notifications"]

    assert "Заказ №ЗК-000123".encode() in await get_utf8(service, "/api/v1/notifications")
    raw = await get_utf8(service, f"/api/v1/notifications/{note['id']}")
    assert "готов к выдаче".encode() in raw


async def test_an_error_body_keeps_the_russian_id_it_names(service: Service) -> None:
    raw = await get_utf8(service, "/api/v1/clients/Клиент-77", status=404)
    assert json.loads(raw)["error"]["code"] == "not_found"
    assert "client Клиент-77 does not exist".encode() in raw


async def test_settings_and_event_types_answer_utf8(service: Service) -> None:
    raw = await get_utf8(service, "/api/v1/settings")
    assert "Чат с менеджером сейчас отключён".encode() in raw
    assert "Заказ клиента".encode() in await get_utf8(service, "/api/v1/event-types")


async def test_the_openapi_document_is_utf8(service: Service) -> None:
    raw = await get_utf8(service, "/api/v1/openapi.json")
    assert "«Запрос перед отправкой»".encode() in raw
