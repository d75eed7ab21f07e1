"""Templates an admin edits through the API (CONTRACT §7), as the admin and the ERP see it.

The admin reads a type's text with the variables it may use, saves a new wording, gets a
422 naming the line for a broken one, goes back to an older version; the next event the
ERP posts, to this replica or another on the same database, is worded the new way. A
folder of the shop's own files overrides the packaged texts, and a Telegram text (HTML)
goes to subscribed clients while the SMS keeps the short plain text.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from storage.models import Notification
from tests.conftest import Service, live_settings, make_settings, start_service
from tests.events import make_event
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram
from tests.security.test_abuse import ESCAPES, LEAKS

READY = "/api/v1/event-types/client_order.ready/templates"
PAYMENT = "/api/v1/event-types/payment.registered/templates"
PACKAGED_READY = (
    Path(__file__).resolve().parents[2] / "templates/events/client_order.ready.client.txt.j2"
)
CLIENT_CHAT = 555_015


async def journal_text(service: Service, notification_id: int) -> str:
    status, body = await service.admin("GET", f"/api/v1/notifications/{notification_id}")
    assert status == 200, body
    return str(body["text"])


async def post_ready(service: Service, **document: Any) -> list[dict[str, Any]]:
    event = make_event("client_order.ready")
    event["document"].update(document)
    status, body = await service.post_event(event)
    assert status == 202, body
    return list(body["notifications"])


async def client_text_of_next_event(service: Service) -> str:
    [note] = await post_ready(service)
    return await journal_text(service, note["id"])


async def save(service: Service, source: str, recipient: str = "client") -> dict[str, Any]:
    status, body = await service.admin("PUT", f"{READY}/{recipient}", json_body={"source": source})
    assert status == 200, body
    return dict(body)


async def test_the_packaged_text_is_shown_with_the_variables_it_may_use(
    service: Service,
) -> None:
    status, body = await service.admin("GET", f"{READY}/client")

    assert status == 200, body
    assert (body["origin"], body["version"], body["history"]) == ("package", 0, [])
    assert body["source"] == PACKAGED_READY.read_text(encoding="utf-8")
    assert body["file"] == "events/client_order.ready.client.txt.j2"
    variables = {item["name"]: item for item in body["variables"]}
    assert variables["document.number"] == {
        "name": "document.number",
        "type": "string",
        "example": "ЗК-000123",
    }
    assert variables["document.amount"]["example"] == 15230.5
    assert variables["document.extra.pickup_point"]["example"] == "ул. Ленина, 5"
    assert variables["document.lines"]["type"] == "list"
    assert variables["document.lines[0].name"]["example"] == "Фильтр масляный"
    assert "company.phone" in variables and "manager.name" in variables


async def test_a_telegram_text_is_reported_even_where_the_type_has_none(
    service: Service,
) -> None:
    status, ready = await service.admin("GET", f"{READY}/client_telegram")
    assert status == 200, ready
    assert ready["origin"] == "package"
    assert ready["file"] == "events/client_order.ready.client_telegram.html.j2"
    assert "<b>" in ready["source"]

    status, vin = await service.admin(
        "GET", "/api/v1/event-types/vin_request.posted/templates/manager_telegram"
    )
    assert status == 200, vin
    assert (vin["source"], vin["origin"], vin["version"]) == (None, None, 0)
    assert vin["variables"], "the variables help to write the first one"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/event-types/client_order.ready/templates/courier", 404, "not_found"),
        ("/api/v1/event-types/no.such/templates/client", 404, "not_found"),
    ],
)
async def test_unknown_types_and_recipients_are_404(
    service: Service, path: str, status: int, code: str
) -> None:
    answer, body = await service.admin("GET", path)
    assert (answer, body["error"]["code"]) == (status, code)


async def test_only_the_admin_may_read_or_change_templates(service: Service) -> None:
    status, body = await service.admin("GET", f"{READY}/client", token="wrong-admin-token!")
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    status, _ = await service.admin(
        "PUT", f"{READY}/client", json_body={"source": "x"}, token=None
    )
    assert status == 401


async def test_a_saved_version_words_the_next_event(service: Service) -> None:
    before = await client_text_of_next_event(service)

    saved = await save(service, "Ваш заказ {{ document.number }} ждёт вас!")

    assert (saved["origin"], saved["version"]) == ("stored", 1)
    assert saved["source"] == "Ваш заказ {{ document.number }} ждёт вас!"
    [entry] = saved["history"]
    assert (entry["version"], entry["actor"]) == (1, "admin:api")
    assert entry["saved_at"]
    assert await client_text_of_next_event(service) == "Ваш заказ ЗК-000123 ждёт вас!"
    assert before != "Ваш заказ ЗК-000123 ждёт вас!"
    # The event preview shows what the next event would say: the saved version.
    event = make_event("client_order.ready")
    status, preview = await service.admin(
        "POST", "/api/v1/event-types/client_order.ready/preview", json_body=event
    )
    assert status == 200, preview
    assert preview["client"]["text"] == "Ваш заказ ЗК-000123 ждёт вас!"


@pytest.mark.parametrize(
    ("source", "line", "words"),
    [
        (
            "Заказ {{ document.number }}\n{% if document.amount %}сумма {{ document.amount }}",
            2,
            "syntax error",
        ),
        (
            "Заказ {{ document.number }}\nготов.\nПункт: {{ document.extra.pickup_pont }}",
            3,
            "pickup_pont",
        ),
        ("Заказ готов\n{{ ''.__class__ }}", 2, "unsafe"),
        ("Заказ готов\n{{ document.number.__class__.__mro__ }}", 2, "unsafe"),
        ("Заказ\n{% for i in range(10**7) %}{{ i }}{% endfor %}", 2, "range"),
    ],
    ids=["syntax", "unknown-variable", "class", "mro", "budget"],
)
async def test_a_broken_text_is_refused_naming_its_line_and_nothing_is_stored(
    service: Service, source: str, line: int, words: str
) -> None:
    status, body = await service.admin("PUT", f"{READY}/client", json_body={"source": source})

    assert status == 422, body
    error = body["error"]
    assert error["code"] == "validation_error"
    assert f"line {line}" in error["message"] and words in error["message"], error
    assert error["details"][0]["line"] == line
    assert error["details"][0]["loc"] == ["source"]
    status, current = await service.admin("GET", f"{READY}/client")
    assert status == 200, current
    assert (current["origin"], current["version"], current["history"]) == ("package", 0, [])
    assert await client_text_of_next_event(service) != source


async def test_a_telegram_text_telegram_would_refuse_is_refused(service: Service) -> None:
    status, body = await service.admin(
        "PUT",
        f"{READY}/client_telegram",
        json_body={"source": "<b>Заказ {{ document.number }}\n<div>готов</div></b>"},
    )
    assert status == 422, body
    assert "<div>" in body["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [{"source": ""}, {"source": "x" * 8193}, {"source": 5}, {"text": "Заказ"}, {}],
    ids=["empty", "too-long", "not-text", "wrong-key", "nothing"],
)
async def test_a_body_that_is_not_one_template_is_422(
    service: Service, body: dict[str, Any]
) -> None:
    status, answer = await service.admin("PUT", f"{READY}/client", json_body=body)
    assert status == 422, answer
    assert answer["error"]["code"] == "validation_error"


async def test_revert_makes_an_older_version_current_again(service: Service) -> None:
    await save(service, "Первая редакция: {{ document.number }}")
    second = await save(service, "Вторая редакция: {{ document.number }}")
    assert second["version"] == 2
    assert [item["version"] for item in second["history"]] == [2, 1]
    assert await client_text_of_next_event(service) == "Вторая редакция: ЗК-000123"

    status, body = await service.admin("POST", f"{READY}/client/revert", json_body={"version": 1})

    assert status == 200, body
    assert (body["origin"], body["version"]) == ("stored", 1)
    assert body["source"] == "Первая редакция: {{ document.number }}"
    assert [item["version"] for item in body["history"]] == [2, 1]
    assert await client_text_of_next_event(service) == "Первая редакция: ЗК-000123"
    status, again = await service.admin("GET", f"{READY}/client")
    assert status == 200, again
    assert (again["origin"], again["version"]) == ("stored", 1)

    # Saving after a revert numbers on from the newest version.
    third = await save(service, "Третья редакция: {{ document.number }}")
    assert third["version"] == 3

    status, files = await service.admin("POST", f"{READY}/client/revert", json_body={"version": 0})
    assert status == 200, files
    assert (files["origin"], files["version"]) == ("package", 0)
    assert await client_text_of_next_event(service) == await packaged_text(service)

    status, missing = await service.admin(
        "POST", f"{READY}/client/revert", json_body={"version": 9}
    )
    assert status == 422, missing
    assert "no version 9" in missing["error"]["message"]
    assert "1, 2, 3" in missing["error"]["message"]

    # A number no version column can hold is the client's mistake, not a server error.
    status, huge = await service.admin(
        "POST", f"{READY}/client/revert", json_body={"version": 2**64}
    )
    assert status == 422, huge


async def test_admins_saving_at_the_same_moment_each_get_their_own_version(
    service: Service,
) -> None:
    sources = [f"Редакция {n}: {{{{ document.number }}}}" for n in range(8)]
    answers = await asyncio.gather(
        *(
            service.admin("PUT", f"{READY}/client", json_body={"source": source})
            for source in sources
        )
    )

    assert [status for status, _ in answers] == [200] * len(sources), answers
    assert sorted(body["version"] for _, body in answers) == list(range(1, 9))
    status, current = await service.admin("GET", f"{READY}/client")
    assert status == 200, current
    assert [item["version"] for item in current["history"]] == list(range(8, 0, -1))
    newest = next(body for _, body in answers if body["version"] == 8)
    assert (current["version"], current["source"]) == (8, newest["source"])


async def packaged_text(service: Service) -> str:
    """The packaged client text of the test event, through the preview (nothing stored)."""
    status, preview = await service.admin(
        "POST",
        "/api/v1/event-types/client_order.ready/preview",
        json_body=make_event("client_order.ready"),
    )
    assert status == 200, preview
    return str(preview["client"]["text"])


async def test_a_folder_of_the_shops_own_files_overrides_the_packaged_texts(
    database_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "shop-templates"
    (folder / "events").mkdir(parents=True)
    (folder / "events" / "client_order.ready.client.txt.j2").write_text(
        "Магазин «Колесо»: заказ {{ document.number }} можно забрать.", encoding="utf-8"
    )
    service = await start_service(
        make_settings(database_url, templates={"dir": str(folder)}), run_workers=False
    )
    try:
        status, body = await service.admin("GET", f"{READY}/client")
        assert status == 200, body
        assert (body["origin"], body["version"]) == ("dir", 0), body
        assert body["source"].startswith("Магазин «Колесо»")
        assert await client_text_of_next_event(service) == (
            "Магазин «Колесо»: заказ ЗК-000123 можно забрать."
        )
        # The manager's text is not in the folder: still the packaged one.
        status, manager = await service.admin("GET", f"{READY}/manager")
        assert status == 200, manager
        assert manager["origin"] == "package"
        # A saved version is the highest layer.
        await save(service, "Из базы: {{ document.number }}")
        assert await client_text_of_next_event(service) == "Из базы: ЗК-000123"
        status, body = await service.admin(
            "POST", f"{READY}/client/revert", json_body={"version": 0}
        )
        assert status == 200, body
        assert body["origin"] == "dir"
    finally:
        await service.client.close()


async def test_a_text_saved_through_one_replica_words_the_next_event_on_another(
    database_url: str,
) -> None:
    replica_a = await start_service(make_settings(database_url), run_workers=False)
    replica_b = await start_service(make_settings(database_url), run_workers=False)
    try:
        # B has rendered this type before: whatever it keeps must not hide the change.
        assert "ЗК-000123" in await client_text_of_next_event(replica_b)

        await save(replica_a, "Сохранено на A: {{ document.number }}")
        assert await client_text_of_next_event(replica_b) == "Сохранено на A: ЗК-000123"

        status, _ = await replica_a.admin(
            "POST", f"{READY}/client/revert", json_body={"version": 0}
        )
        assert status == 200
        assert "Сохранено на A" not in await client_text_of_next_event(replica_b)
        status, seen_by_b = await replica_b.admin("GET", f"{READY}/client")
        assert status == 200, seen_by_b
        assert seen_by_b["origin"] == "package"
        assert [item["version"] for item in seen_by_b["history"]] == [1]
    finally:
        await replica_b.client.close()
        await replica_a.client.close()


# --- Telegram texts in live mode ----------------------------------------------------------


async def add_client(service: Service, client_id: str, phone: str) -> None:
    status, body = await service.admin(
        "PUT",
        f"/api/v1/clients/{client_id}",
        json_body={"name": "ООО Ромашка", "phone": phone, "manager_id": "M-7"},
    )
    assert status in (200, 201), body


async def test_a_subscribed_client_reads_the_telegram_text_and_an_sms_client_the_short_one(
    live_service: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    await add_client(live_service, "C-1001", "+7 916 123-45-67")
    await live_service.link_chat(CLIENT_CHAT, client_id="C-1001")
    document = {
        "extra": {"pickup_point": "ул. Ленина, 5 <склад №2>", "pickup_hours": "пн–пт 9–19"}
    }

    [by_telegram] = await post_ready(live_service, **document)
    sms_event = make_event(
        "client_order.ready",
        client={"id": "C-2002", "name": "ИП Сидоров", "phone": "+7 916 765-43-21"},
    )
    sms_event["document"].update(document)
    status, body = await live_service.post_event(sms_event)
    assert status == 202, body
    [by_sms] = body["notifications"]
    assert (by_telegram["channel"], by_sms["channel"]) == ("telegram", "sms")
    telegram_row = await live_service.wait_for_status(by_telegram["id"], "sent")
    sms_row = await live_service.wait_for_status(by_sms["id"], "sent")

    [message] = telegram.messages_to(CLIENT_CHAT)
    assert message.parse_mode == "HTML"
    assert message.text == telegram_row.telegram_text
    assert "<b>Заказ №ЗК-000123 готов к выдаче</b>" in message.text
    assert "ул. Ленина, 5 &lt;склад №2&gt;" in message.text  # ERP data is escaped
    assert "пн–пт 9–19" in message.text
    assert "Фильтр масляный" in message.text
    [sms] = sms_gateway.sent
    assert sms.text == sms_row.text
    assert "<" not in sms.text and "ЗК-000123" in sms.text
    # The journal keeps the plain text of both; the Telegram one rides along, in case the
    # client subscribes before the SMS goes.
    assert telegram_row.text is not None and "<b>" not in telegram_row.text
    assert sms_row.telegram_text is not None and "<b>" in sms_row.telegram_text


async def test_a_telegram_text_saved_through_the_api_goes_by_telegram(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await add_client(live_service, "C-1001", "+7 916 123-45-67")
    await live_service.link_chat(CLIENT_CHAT, client_id="C-1001")
    status, body = await live_service.admin(
        "PUT",
        f"{PAYMENT}/client_telegram",
        json_body={"source": "<i>Оплата {{ document.amount|money }}</i> — {{ client.name }}"},
    )
    assert status == 200, body

    event = make_event("payment.registered")
    event["client"]["name"] = "ООО «Рога & Копыта»"
    status, answer = await live_service.post_event(event)
    assert status == 202, answer
    await live_service.wait_for_status(answer["notifications"][0]["id"], "sent")

    [message] = telegram.messages_to(CLIENT_CHAT)
    assert message.parse_mode == "HTML"
    assert message.text == "<i>Оплата 15 230,50 ₽</i> — ООО «Рога &amp; Копыта»"


async def test_a_type_without_a_telegram_text_sends_its_plain_text_by_telegram(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await add_client(live_service, "C-1001", "+7 916 123-45-67")
    await live_service.link_chat(CLIENT_CHAT, client_id="C-1001")
    status, answer = await live_service.post_event(make_event("client_order.posted"))
    assert status == 202, answer
    row = await live_service.wait_for_status(answer["notifications"][0]["id"], "sent")

    [message] = telegram.messages_to(CLIENT_CHAT)
    assert message.parse_mode is None
    assert message.text == row.text
    async with live_service.db.sessions() as session:
        stored = await session.get(Notification, row.id)
    assert stored is not None and stored.telegram_text is None


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sandbox_escapes_in_a_types_text_are_refused_or_harmless(service: Service) -> None:
    saved = 0
    for source in ESCAPES:
        for recipient in ("client", "client_telegram"):
            status, body = await service.admin(
                "PUT", f"{READY}/{recipient}", json_body={"source": source}
            )
            assert status in (200, 422), (source, body)
            assert not LEAKS.search(str(body.get("error", ""))), (source, body)
            if status == 200:
                saved += 1
                assert not LEAKS.search(await client_text_of_next_event(service)), source
    # Only the escapes that print a harmless string get through (e.g. the text "__class__").
    assert saved <= 2


async def test_telegram_texts_from_the_shops_folder_are_used_unless_telegram_would_refuse_them(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway, tmp_path: Path
) -> None:
    folder = tmp_path / "shop-templates" / "events"
    folder.mkdir(parents=True)
    (folder / "client_order.posted.client_telegram.html.j2").write_text(
        "<b>Заказ {{ document.number }} проведён</b>", encoding="utf-8"
    )
    (folder / "client_order.ready.client_telegram.html.j2").write_text(
        "<div>Заказ {{ document.number }} готов</div>", encoding="utf-8"
    )
    settings = live_settings(
        database_url, telegram, sms_gateway, templates={"dir": str(folder.parent)}
    )
    service = await start_service(settings)
    try:
        await add_client(service, "C-1001", "+7 916 123-45-67")
        await service.link_chat(CLIENT_CHAT, client_id="C-1001")
        for type_ in ("client_order.posted", "client_order.ready"):
            status, answer = await service.post_event(make_event(type_))
            assert status == 202, answer
            await service.wait_for_status(answer["notifications"][0]["id"], "sent")

        posted, ready = telegram.messages_to(CLIENT_CHAT)
        assert (posted.parse_mode, posted.text) == ("HTML", "<b>Заказ ЗК-000123 проведён</b>")
        # Telegram would refuse <div>: the plain text goes instead of losing the message.
        assert ready.parse_mode is None
        assert "<div>" not in (ready.text or "") and "ЗК-000123" in (ready.text or "")
        assert sms_gateway.sent == []
    finally:
        await service.client.close()
