"""An admin previews texts before they go out (CONTRACT §6): the SMS figures of any text,
and what an event of each type would say to the client and the manager — storing nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from storage.models import Client, Event, Manager, Notification
from tests.conftest import Service
from tests.events import ALL_TYPES, make_event

CYRILLIC_71 = "Ваш заказ ЗК-000123 готов к выдаче. Ждём вас в пункте выдачи до 20:00!!"
PREVIEW_KEYS = {"text", "encoding", "units", "segments", "parts", "error"}


def is_russian(text: str | None) -> bool:
    return bool(text) and sum("а" <= ch <= "я" for ch in (text or "").lower()) >= 5


async def stored(service: Service, model: type) -> int:
    async with service.db.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def sms_preview(service: Service, text: Any) -> tuple[int, Any]:
    return await service.admin("POST", "/api/v1/sms/preview", json_body={"text": text})


# --- sms/preview ----------------------------------------------------------------------------


async def test_cyrillic_71_chars_is_two_ucs2_segments(service: Service) -> None:
    assert len(CYRILLIC_71) == 71

    status, body = await sms_preview(service, CYRILLIC_71)

    assert status == 200
    assert body == {
        "encoding": "ucs2",
        "units": 71,
        "segments": 2,
        "parts": [CYRILLIC_71[:67], CYRILLIC_71[67:]],
    }
    assert [len(part) for part in body["parts"]] == [67, 4]


@pytest.mark.parametrize(
    ("text", "encoding", "units", "part_sizes"),
    [
        ("Заказ готов", "ucs2", 11, [11]),
        ("Я" * 70, "ucs2", 70, [70]),
        ("Я" * 134, "ucs2", 134, [67, 67]),
        ("Order ready", "gsm7", 11, [11]),
        ("a" * 160, "gsm7", 160, [160]),
        ("a" * 161, "gsm7", 161, [153, 8]),
        ("Cost: 5€ [net]", "gsm7", 17, [14]),  # €, [ and ] are extension characters: 2 each
        ("", "gsm7", 0, []),
    ],
)
async def test_sms_figures_follow_the_seed_table(
    service: Service, text: str, encoding: str, units: int, part_sizes: list[int]
) -> None:
    status, body = await sms_preview(service, text)

    assert status == 200
    assert (body["encoding"], body["units"], body["segments"]) == (
        encoding, units, len(part_sizes)
    )  # fmt: skip
    assert [len(part) for part in body["parts"]] == part_sizes
    assert "".join(body["parts"]) == text


async def test_sms_preview_takes_up_to_10000_characters(service: Service) -> None:
    status, body = await sms_preview(service, "Я" * 10_000)
    assert status == 200 and body["units"] == 10_000

    status, body = await sms_preview(service, "Я" * 10_001)
    assert status == 422
    assert body["error"]["code"] == "validation_error"
    assert body["error"]["details"][0]["loc"] == ["text"]


@pytest.mark.parametrize("payload", [{}, {"text": None}, {"text": 5}, {"text": "a", "to": "x"}])
async def test_sms_preview_wants_a_text(service: Service, payload: dict[str, Any]) -> None:
    status, body = await service.admin("POST", "/api/v1/sms/preview", json_body=payload)
    assert status == 422
    assert body["error"]["code"] == "validation_error"


# --- event-types/{code}/preview -------------------------------------------------------------


@pytest.mark.parametrize("event_type", ALL_TYPES)
async def test_each_type_previews_russian_texts_for_client_and_manager(
    service: Service, event_type: str
) -> None:
    status, body = await service.admin(
        "POST", f"/api/v1/event-types/{event_type}/preview", json_body=make_event(event_type)
    )

    assert status == 200, body
    assert set(body) == {"client", "manager"}
    for recipient in ("client", "manager"):
        preview = body[recipient]
        assert set(preview) == PREVIEW_KEYS
        assert preview["error"] is None, preview
        assert is_russian(preview["text"]), preview
        assert preview["encoding"] == "ucs2"
        assert preview["units"] == len(preview["text"].encode("utf-16-le")) // 2
        assert preview["segments"] == len(preview["parts"]) >= 1
        assert "".join(preview["parts"]) == preview["text"]
    assert body["client"]["text"] != body["manager"]["text"]


async def test_preview_stores_nothing(service: Service) -> None:
    status, _ = await service.admin(
        "POST", "/api/v1/event-types/client_order.ready/preview", json_body=make_event()
    )
    assert status == 200
    for model in (Event, Notification, Client, Manager):
        assert await stored(service, model) == 0, model.__name__


async def test_preview_shows_exactly_what_the_event_then_sends(service: Service) -> None:
    event = make_event("client_order.ready", event_id="erp-same")
    _, preview = await service.admin(
        "POST", "/api/v1/event-types/client_order.ready/preview", json_body=event
    )
    status, posted = await service.post_event(event)
    assert status == 202

    async with service.db.sessions() as session:
        note = await session.get(Notification, posted["notifications"][0]["id"])
    assert note is not None
    assert preview["client"]["text"] == note.text
    assert (preview["client"]["units"], preview["client"]["segments"]) == (
        note.units, note.segments
    )  # fmt: skip


async def test_the_path_names_the_type_and_the_body_may_omit_it(service: Service) -> None:
    event = make_event("payment.registered")
    expected = (
        await service.admin(
            "POST", "/api/v1/event-types/client_order.ready/preview", json_body=event
        )
    )[1]
    for key in ("type", "event_id", "occurred_at"):
        event.pop(key)

    status, body = await service.admin(
        "POST", "/api/v1/event-types/client_order.ready/preview", json_body=event
    )

    assert status == 200, body
    assert body["client"]["text"] == expected["client"]["text"]
    _, paid = await service.admin(
        "POST", "/api/v1/event-types/payment.registered/preview", json_body=make_event()
    )
    assert paid["client"]["text"] != body["client"]["text"]


async def test_a_render_error_is_reported_not_raised(service: Service) -> None:
    status, _ = await service.admin(
        "PUT",
        "/api/v1/clients/C-1001",
        json_body={
            "name": "ООО Ромашка",
            "overrides": {"client_order.ready": {"template_client": "Заказ {{ no_such.value }}"}},
        },
    )
    assert status == 201

    status, body = await service.admin(
        "POST", "/api/v1/event-types/client_order.ready/preview", json_body=make_event()
    )

    assert status == 200, body
    client = body["client"]
    assert client["text"] is None and client["parts"] == []
    assert "no_such" in client["error"]
    assert body["manager"]["error"] is None and is_russian(body["manager"]["text"])


async def test_the_manager_text_without_a_manager_is_an_error_not_a_crash(
    service: Service,
) -> None:
    event = make_event(manager=None)
    event["client"].pop("manager_id")

    status, body = await service.admin(
        "POST", "/api/v1/event-types/client_order.ready/preview", json_body=event
    )

    assert status == 200, body
    assert body["client"]["error"] is None
    assert body["manager"]["text"] is None
    assert body["manager"]["error"] == "the client has no responsible manager"


async def test_preview_of_an_unknown_type_is_404(service: Service) -> None:
    status, body = await service.admin(
        "POST", "/api/v1/event-types/order.unknown/preview", json_body=make_event()
    )
    assert status == 404
    assert body["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda e: e.pop("client"), "client"),
        (lambda e: e["client"].update(phone="call me"), "client"),
        (lambda e: e.update(document="ЗК-1"), "document"),
    ],
)
async def test_preview_of_an_invalid_event_is_422(
    service: Service, mutate: Any, where: str
) -> None:
    event = make_event()
    mutate(event)
    status, body = await service.admin(
        "POST", "/api/v1/event-types/client_order.ready/preview", json_body=event
    )
    assert status == 422
    assert body["error"]["code"] == "validation_error"
    assert where in [detail["loc"][0] for detail in body["error"]["details"]]
