"""An operator manages the managers through the admin API: creates and edits manager cards,
makes a manager an admin (who then sees every client in the bot and gets the low-balance
alerts in Telegram), and lists the contacts shared with the bot that matched nobody."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest

from handlers.common.cursors import encode_cursor
from handlers.http import notifications
from storage import directory, inbox
from storage.models import Manager
from storage.types import utcnow
from tests.conftest import ADMIN_TOKEN, Service, live_settings, start_service
from tests.events import MANAGER, make_event
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram
from tests.integration.test_admin_api import assert_error
from tests.integration.test_bot_support import (
    ADMIN_CHAT,
    CLIENT_CHAT,
    MANAGER_CHAT,
    STRANGER_CHAT,
    add_client,
    add_manager,
    links,
    say,
)
from tests.integration.test_scheduler import INTERVAL, at, priced, scheduler_of

CARD_KEYS = {
    "id", "name", "phone", "email", "is_admin", "telegram_linked", "telegram_chats",
    "created_at", "updated_at",
}  # fmt: skip
CHAT_KEYS = {"chat_id", "user_id", "stopped", "blocked", "linked_at", "updated_at"}
CONTACT_KEYS = {"id", "chat_id", "user_id", "phone", "name", "created_at"}

ROUTES = [
    ("GET", "/api/v1/managers/M-7"),
    ("PUT", "/api/v1/managers/M-7"),
    ("GET", "/api/v1/unmatched-contacts"),
]


async def put_manager(
    service: Service, manager_id: str = "M-7", **body: Any
) -> tuple[int, dict[str, Any]]:
    status, card = await service.admin("PUT", f"/api/v1/managers/{manager_id}", json_body=body)
    return status, card


async def manager_card(service: Service, manager_id: str = "M-7") -> dict[str, Any]:
    status, card = await service.admin("GET", f"/api/v1/managers/{manager_id}")
    assert status == 200, card
    assert set(card) == CARD_KEYS
    return dict(card)


async def unmatched(service: Service, **query: Any) -> tuple[int, Any]:
    return await service.admin("GET", "/api/v1/unmatched-contacts?" + urlencode(query))


# --------------------------------------------------------------------------- authorisation


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_manager_route_wants_the_bearer_token(
    service: Service, method: str, path: str
) -> None:
    for token in (None, "wrong-token", ADMIN_TOKEN + "x"):
        response = await service.client.request(
            method,
            path,
            json={"name": "Взломщик", "is_admin": True},
            headers={"Authorization": f"Bearer {token}"} if token else {},
        )
        assert response.status == 401, token
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert_error(await response.json(), "unauthorized")
    async with service.db.sessions() as session:
        assert await session.get(Manager, "M-7") is None, "nothing is stored without the token"


# --------------------------------------------------------------------------- manager cards


async def test_a_manager_card_is_created_then_updated_field_by_field(service: Service) -> None:
    status, card = await put_manager(
        service, name="Иван Петров", phone="8 (903) 123-45-67", email="ivan@shop.test"
    )

    assert status == 201, card
    assert set(card) == CARD_KEYS
    assert (card["id"], card["name"], card["phone"], card["email"]) == (
        "M-7",
        "Иван Петров",
        "+79031234567",
        "ivan@shop.test",
    )
    assert (card["is_admin"], card["telegram_linked"]) == (False, False)
    assert card["telegram_chats"] == []
    assert await manager_card(service) == card

    status, updated = await put_manager(service, is_admin=True)
    assert status == 200, updated
    assert updated["is_admin"] is True
    assert (updated["name"], updated["phone"], updated["email"]) == (
        "Иван Петров",
        "+79031234567",
        "ivan@shop.test",
    ), "fields not given are kept"
    assert updated["created_at"] == card["created_at"]

    status, cleared = await put_manager(service, phone=None, email="  ")
    assert status == 200, cleared
    assert (cleared["phone"], cleared["email"], cleared["is_admin"]) == (None, None, True)

    status, renamed = await put_manager(service, name="  Иван Сергеевич Петров ")
    assert status == 200, renamed
    assert renamed["name"] == "Иван Сергеевич Петров"

    status, revoked = await put_manager(service, is_admin=False)
    assert status == 200 and revoked["is_admin"] is False


async def test_a_new_manager_needs_a_name(service: Service) -> None:
    status, body = await put_manager(service, "M-NEW", is_admin=True, phone="89031234567")

    assert status == 422, body
    error = assert_error(body, "validation_error")
    assert error["details"][0]["loc"] == ["name"]
    assert "name is required" in error["message"]
    status, body = await service.admin("GET", "/api/v1/managers/M-NEW")
    assert status == 404
    assert_error(body, "not_found")


async def test_an_unknown_manager_is_404(service: Service) -> None:
    for manager_id in ("M-404", "M" * 65, "M-%00"):
        status, body = await service.admin("GET", f"/api/v1/managers/{manager_id}")
        assert status == 404, (manager_id, body)
        assert_error(body, "not_found")


async def test_a_manager_id_the_erp_could_not_send_is_refused(service: Service) -> None:
    for manager_id in ("M" * 65, "M-%00"):
        status, body = await put_manager(service, manager_id, name="Кто-то")
        assert status == 422, (manager_id, body)
        assert_error(body, "validation_error")
    async with service.db.sessions() as session:
        assert (await session.get(Manager, "M" * 65)) is None


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"name": "Кто-то", "phone": "позвоните мне"}, "phone"),
        ({"name": "Кто-то", "phone": 79031234567}, "phone"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": None}, None),
        ({"name": 7}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": "Кто-то", "is_admin": "true"}, "is_admin"),
        ({"name": "Кто-то", "is_admin": 1}, "is_admin"),
        ({"name": "Кто-то", "is_admin": None}, None),
        ({"name": "Кто-то", "email": "x" * 256}, "email"),
        ({"name": "Кто-то", "email": ["a@b.c"]}, "email"),
        ({"name": "Кто-то", "role": "admin"}, "role"),
        ({"name": "Кто-то", "id": "M-8"}, "id"),
        ({"name": "Кто\u0000то"}, None),
    ],
)
async def test_bad_manager_cards_are_422_and_change_nothing(
    service: Service, payload: dict[str, Any], where: str | None
) -> None:
    status, _ = await put_manager(service, "M-1", name="Анна", phone="+79037654321")
    assert status == 201

    for manager_id in ("M-1", "M-NEW"):
        status, body = await put_manager(service, manager_id, **payload)
        assert status == 422, body
        error = assert_error(body, "validation_error")
        if where is not None:
            assert where in [detail["loc"][0] for detail in error["details"]], error

    card = await manager_card(service, "M-1")
    assert (card["name"], card["phone"], card["is_admin"]) == ("Анна", "+79037654321", False)
    async with service.db.sessions() as session:
        assert await session.get(Manager, "M-NEW") is None


async def test_a_body_that_is_not_a_json_object_is_refused(service: Service) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    for raw, status_wanted, code in (
        (b'{"name": ', 400, "invalid_json"),
        (b'{"name": "A", "name": "B"}', 400, "invalid_json"),
        (b'["name", "A"]', 422, "validation_error"),
        (b"", 400, "invalid_json"),
    ):
        response = await service.client.put("/api/v1/managers/M-7", data=raw, headers=headers)
        assert response.status == status_wanted, raw
        assert_error(await response.json(), code)


async def test_the_card_shows_every_linked_chat_with_its_state(service: Service) -> None:
    await put_manager(service, name="Иван Петров")
    await service.link_chat(MANAGER_CHAT, manager_id="M-7")
    await service.link_chat(ADMIN_CHAT, manager_id="M-7")
    async with service.db.transaction() as session:
        await directory.set_chat_flags(session, ADMIN_CHAT, stopped=True)

    card = await manager_card(service)

    assert [set(chat) for chat in card["telegram_chats"]] == [CHAT_KEYS, CHAT_KEYS]
    assert [
        (chat["chat_id"], chat["user_id"], chat["stopped"], chat["blocked"])
        for chat in card["telegram_chats"]
    ] == [(MANAGER_CHAT, MANAGER_CHAT, False, False), (ADMIN_CHAT, ADMIN_CHAT, True, False)]
    assert card["telegram_linked"] is True

    async with service.db.transaction() as session:
        await directory.set_chat_flags(session, MANAGER_CHAT, blocked=True)
    card = await manager_card(service)
    assert card["telegram_linked"] is False, "a stopped and a blocked chat get nothing"
    assert len(card["telegram_chats"]) == 2


# --------------------------------------------------------------------------- the ERP and is_admin


async def test_an_erp_event_updates_the_manager_but_never_resets_is_admin(
    service: Service,
) -> None:
    # The ERP introduces the manager; the operator makes them an admin.
    status, body = await service.post_event(make_event("client_order.ready", event_id="erp-1"))
    assert status == 202, body
    status, card = await put_manager(service, is_admin=True)
    assert status == 200, card
    assert (card["name"], card["phone"], card["is_admin"]) == (
        MANAGER["name"],
        MANAGER["phone"],
        True,
    )

    # Later events change the manager's name and phone, one even says is_admin: false.
    renamed = {**MANAGER, "name": "Иван Петрович Петров", "phone": "+7 903 000-00-01"}
    for event_id, manager in (
        ("erp-2", renamed),
        ("erp-3", {**renamed, "is_admin": False}),
        ("erp-4", {"id": "M-7", "name": "Иван Петрович Петров"}),
    ):
        status, body = await service.post_event(
            make_event("client_order.posted", event_id=event_id, manager=manager)
        )
        assert status == 202, body

    card = await manager_card(service)
    assert card["is_admin"] is True, "the ERP knows nothing of is_admin and must not reset it"
    assert (card["name"], card["phone"]) == ("Иван Петрович Петров", "+79030000001")


async def test_a_manager_created_by_the_operator_is_the_one_the_erp_updates(
    service: Service,
) -> None:
    status, _ = await put_manager(service, name="Иван", email="ivan@shop.test", is_admin=True)
    assert status == 201

    status, body = await service.post_event(make_event("client_order.ready"))
    assert status == 202, body

    card = await manager_card(service)
    assert (card["name"], card["phone"], card["email"], card["is_admin"]) == (
        MANAGER["name"],
        MANAGER["phone"],
        "ivan@shop.test",
        True,
    ), "the event sets what it gives and keeps the rest"


# --------------------------------------------------------------------------- admins in the bot


async def test_the_operator_makes_a_manager_admin_and_their_journal_shows_every_client(
    live_service: Service, telegram: FakeTelegram
) -> None:
    # M-7 manages C-1001, whose order-ready message goes out.
    await add_manager(live_service, chat_id=MANAGER_CHAT)
    await add_client(live_service)
    await live_service.link_chat(CLIENT_CHAT, client_id="C-1001")
    status, body = await live_service.post_event(make_event("client_order.ready"))
    assert status == 202, body
    [note] = [n for n in body["notifications"] if n["recipient"] == "client"]
    await live_service.wait_for_status(note["id"], "sent")

    # The operator adds Anna, who subscribes by sharing her own phone.
    status, card = await put_manager(live_service, "M-1", name="Анна", phone="8 903 765-43-21")
    assert status == 201, card
    [reply] = await say(telegram, telegram.contact(ADMIN_CHAT, "79037654321"))
    assert "менеджер" in (reply.text or "")
    [chat] = (await manager_card(live_service, "M-1"))["telegram_chats"]
    assert (chat["chat_id"], chat["stopped"], chat["blocked"]) == (ADMIN_CHAT, False, False)

    # Not an admin yet: C-1001 is not hers.
    [reply] = await say(telegram, telegram.command(ADMIN_CHAT, "/journal"))
    assert f"№{note['id']}" not in (reply.text or "")
    assert "Уведомлений нет" in (reply.text or "")

    status, card = await put_manager(live_service, "M-1", is_admin=True)
    assert status == 200 and card["is_admin"] is True

    [reply] = await say(telegram, telegram.command(ADMIN_CHAT, "/journal"))
    assert f"№{note['id']}" in (reply.text or "")
    assert "ООО Ромашка" in (reply.text or "")

    # And taking the right away works the same way.
    await put_manager(live_service, "M-1", is_admin=False)
    [reply] = await say(telegram, telegram.command(ADMIN_CHAT, "/journal"))
    assert f"№{note['id']}" not in (reply.text or "")


@pytest.fixture
async def monitored(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> AsyncIterator[Service]:
    """Live Vestnik with a low-balance threshold of 100 and no SMTP (Telegram alerts only)."""
    settings = live_settings(
        database_url,
        telegram,
        sms_gateway,
        notify={"low_balance_threshold": 100},
        scheduler={"balance_check_seconds": INTERVAL, "balance_failures_before_alert": 3},
    )
    running = await start_service(priced(settings))
    try:
        yield running
    finally:
        await running.client.close()


async def test_a_manager_made_admin_gets_the_low_balance_alert_in_telegram(
    monitored: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    scheduler = scheduler_of(monitored)

    async def check(step: int, balance: str) -> dict[str, Any]:
        sms_gateway.balance = Decimal(balance)
        run = await scheduler.run_job_now("balance", now=at(step))
        assert run.claimed and run.error is None, run
        assert run.result is not None
        return run.result

    status, _ = await put_manager(monitored, "M-1", name="Анна")
    assert status == 201
    await monitored.link_chat(ADMIN_CHAT, manager_id="M-1")

    # An ordinary manager hears nothing of the balance.
    result = await check(0, "40")
    assert (result["alerts"], result["telegram_sent"]) == (["low_balance"], 0)
    assert telegram.messages_to(ADMIN_CHAT) == []
    await check(1, "300")  # topped up: the alert is armed again

    status, card = await put_manager(monitored, "M-1", is_admin=True)
    assert status == 200 and card["is_admin"] is True

    result = await check(2, "40")
    assert (result["alerts"], result["telegram_sent"]) == (["low_balance"], 1)
    [alert] = telegram.messages_to(ADMIN_CHAT)
    assert "Баланс SMS ниже порога" in (alert.text or "")
    assert "40,00 ₽" in (alert.text or "")


# --------------------------------------------------------------------------- unmatched contacts


async def test_a_strangers_contact_is_listed_and_the_operator_adds_him_as_a_manager(
    live_service: Service, telegram: FakeTelegram
) -> None:
    status, body = await unmatched(live_service)
    assert (status, body) == (200, {"items": [], "next_cursor": None})

    [reply] = await say(
        telegram, telegram.contact(STRANGER_CHAT, "+79990001122", first_name="Пётр")
    )
    assert "не найден" in (reply.text or "")

    status, body = await unmatched(live_service)
    assert status == 200, body
    [contact] = body["items"]
    assert set(contact) == CONTACT_KEYS
    assert (contact["chat_id"], contact["user_id"], contact["phone"], contact["name"]) == (
        STRANGER_CHAT,
        STRANGER_CHAT,
        "+79990001122",
        "Пётр",
    ), "the phone as stored, unmasked: this is the authenticated admin API"
    assert body["next_cursor"] is None

    # Пётр is the new manager: the operator adds him, he shares his contact again.
    status, card = await put_manager(live_service, "M-9", name="Пётр", phone=contact["phone"])
    assert status == 201, card
    [reply] = await say(telegram, telegram.contact(STRANGER_CHAT, "+79990001122"))
    assert "менеджер" in (reply.text or "")
    [link] = await links(live_service, STRANGER_CHAT)
    assert link.manager_id == "M-9"
    status, body = await unmatched(live_service)
    assert len(body["items"]) == 1, "a contact that matched is not recorded"


async def test_unmatched_contacts_are_listed_newest_first_page_by_page(service: Service) -> None:
    start = utcnow() - timedelta(minutes=10)
    async with service.db.transaction() as session:
        for number in range(5):
            await inbox.record_unmatched_contact(
                session,
                chat_id=900_000 + number,
                user_id=None if number == 0 else 900_000 + number,
                phone=f"+7999000000{number}",
                name=None if number == 1 else f"Гость {number}",
                now=start + timedelta(minutes=number),
            )

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        status, body = await unmatched(service, limit=2, **({"cursor": cursor} if cursor else {}))
        assert status == 200, body
        assert len(body["items"]) <= 2
        seen.extend(body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert pages == 3
    assert [item["chat_id"] for item in seen] == [900_004, 900_003, 900_002, 900_001, 900_000]
    assert [item["phone"] for item in seen][-1] == "+79990000000"
    assert (seen[-1]["user_id"], seen[-2]["name"]) == (None, None)
    assert seen[0]["created_at"] == (start + timedelta(minutes=4)).isoformat()

    status, body = await unmatched(service, limit=500)
    assert [item["id"] for item in body["items"]] == [item["id"] for item in seen]


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": 501},
        {"limit": "ten"},
        {"cursor": "not-a-cursor"},
        {"cursor": ""},
        # The journal's cursor is not this list's.
        {"cursor": encode_cursor(5, notifications.CURSOR_PREFIX)},
        {"status": "new"},
    ],
)
async def test_bad_unmatched_contacts_queries_are_422(
    service: Service, query: dict[str, Any]
) -> None:
    status, body = await unmatched(service, **query)
    assert status == 422, body
    error = assert_error(body, "validation_error")
    assert json.dumps(error["details"])
