"""An admin drives Vestnik through the admin API (CONTRACT §6): the journal, manual actions,
settings, event types and client cards, with the ERP posting events in between."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from dispatch.catalogue import EVENT_TYPES
from handlers.common.auth import admin_only
from handlers.common.context import HttpContext
from handlers.common.keys import HTTP_CONTEXT
from storage.models import Client, ClientTypeSetting, Notification
from tests.conftest import ADMIN_TOKEN, Service, make_settings, start_service
from tests.events import ALL_TYPES, make_event

ITEM_KEYS = {
    "id", "event_id", "event_type", "recipient", "client_id", "manager_id", "channel",
    "phone", "status", "text", "encoding", "units", "segments", "reason", "attempts",
    "provider", "provider_message_id", "created_at", "updated_at", "sent_at", "delivered_at",
    "not_before",
}  # fmt: skip
HISTORY_KEYS = {"at", "from_status", "to_status", "actor", "reason", "channel"}

ADMIN_ROUTES = [
    ("GET", "/api/v1/notifications"),
    ("GET", "/api/v1/notifications/1"),
    ("POST", "/api/v1/notifications/1/status"),
    ("POST", "/api/v1/notifications/1/confirm"),
    ("POST", "/api/v1/notifications/1/cancel"),
    ("POST", "/api/v1/notifications/1/send-now"),
    ("POST", "/api/v1/notifications/1/resend"),
    ("GET", "/api/v1/settings"),
    ("PUT", "/api/v1/settings"),
    ("GET", "/api/v1/event-types"),
    ("GET", "/api/v1/event-types/client_order.ready"),
    ("PUT", "/api/v1/event-types/client_order.ready"),
    ("POST", "/api/v1/event-types/client_order.ready/preview"),
    ("POST", "/api/v1/sms/preview"),
    ("GET", "/api/v1/clients/C-1001"),
    ("PUT", "/api/v1/clients/C-1001"),
]


def client_body(client_id: str = "C-1001", **changes: Any) -> dict[str, Any]:
    return {
        "id": client_id,
        "name": "ООО Ромашка",
        "phone": "+7 916 123-45-67",
        "manager_id": "M-7",
        "category": "Опт",
        "blocked": False,
        **changes,
    }


def assert_error(body: Any, code: str) -> dict[str, Any]:
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["code"] == code, body
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], list)
    assert ADMIN_TOKEN not in json.dumps(body)
    return error


async def post(service: Service, type_: str = "client_order.ready", **kwargs: Any) -> list[int]:
    """The ERP posts an event; the ids of the notifications it created."""
    status, body = await service.post_event(make_event(type_, **kwargs))
    assert status == 202, body
    return [item["id"] for item in body["notifications"]]


async def journal(service: Service, **query: Any) -> tuple[int, Any]:
    return await service.admin("GET", "/api/v1/notifications?" + urlencode(query))


async def one_notification(service: Service, **query: Any) -> dict[str, Any]:
    status, body = await journal(service, **query)
    assert status == 200, body
    assert len(body["items"]) == 1, body
    item: dict[str, Any] = body["items"][0]
    return item


async def confirm_before_send(service: Service, code: str = "client_order.ready") -> None:
    status, body = await service.admin(
        "PUT", f"/api/v1/event-types/{code}", json_body={"confirm_before_send": True}
    )
    assert status == 200, body


# --- authorisation --------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
async def test_every_admin_route_wants_the_bearer_token(
    service: Service, method: str, path: str
) -> None:
    for token in (None, "wrong-token", ADMIN_TOKEN + "x"):
        status, body = await service.admin(method, path, json_body={}, token=token)
        assert status == 401, (token, body)
        assert_error(body, "unauthorized")


async def test_401_tells_the_client_to_use_a_bearer_token(service: Service) -> None:
    response = await service.client.get(
        "/api/v1/settings", headers={"Authorization": f"Basic {ADMIN_TOKEN}"}
    )
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")

    ok = await service.client.get(
        "/api/v1/settings", headers={"Authorization": f"bearer {ADMIN_TOKEN}"}
    )
    assert ok.status == 200


async def test_without_an_admin_token_loopback_is_served(database_url: str) -> None:
    running = await start_service(make_settings(database_url, admin={"token": None}))
    try:
        status, body = await running.admin("GET", "/api/v1/settings", token=None)
    finally:
        await running.client.close()
    assert status == 200, body
    assert body["mode"] == "test"


@pytest.mark.parametrize(("remote", "allowed"), [("203.0.113.7", False), ("::1", True)])
async def test_without_an_admin_token_other_hosts_are_refused(remote: str, allowed: bool) -> None:
    app = web.Application()
    app[HTTP_CONTEXT] = HttpContext(webhook_secret=None, admin_token=None)
    transport = mock.Mock()
    transport.get_extra_info.return_value = (remote, 40000)
    request = make_mocked_request("GET", "/api/v1/settings", app=app, transport=transport)

    async def view(_request: web.Request) -> web.Response:
        return web.json_response({"served": True})

    response = await admin_only(view)(request)

    assert isinstance(response, web.Response)
    assert response.status == (200 if allowed else 401)
    if not allowed:
        assert response.text is not None
        error = assert_error(json.loads(response.text), "unauthorized")
        assert "loopback" in error["message"]


# --- the journal ----------------------------------------------------------------------------


async def test_journal_lists_newest_first_with_every_field(service: Service) -> None:
    first = await post(service, event_id="erp-first")
    second = await post(service, "payment.registered", event_id="erp-second")

    status, body = await journal(service)

    assert status == 200
    assert body["next_cursor"] is None
    assert [item["id"] for item in body["items"]] == [*second, *first]
    newest = body["items"][0]
    assert set(newest) == ITEM_KEYS
    assert newest["event_id"] == "erp-second"
    assert newest["event_type"] == "payment.registered"
    assert (newest["recipient"], newest["client_id"], newest["status"]) == (
        "client", "C-1001", "test"
    )  # fmt: skip
    assert newest["phone"] == "+79161234567"
    assert newest["encoding"] == "ucs2" and newest["segments"] >= 1
    assert newest["text"] and newest["attempts"] == 0
    created = datetime.fromisoformat(newest["created_at"])
    assert created.tzinfo is not None
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=5)


async def test_journal_filters_by_status_type_client_and_time(service: Service) -> None:
    ready_a = await post(service, client=client_body("C-A"))
    paid_b = await post(service, "payment.registered", client=client_body("C-B"))
    ready_b = await post(service, client=client_body("C-B"))
    status, _ = await service.admin(
        "POST", f"/api/v1/notifications/{paid_b[0]}/status", json_body={"status": "sent_manually"}
    )
    assert status == 200

    async def ids(**query: Any) -> list[int]:
        status, body = await journal(service, **query)
        assert status == 200, body
        return [item["id"] for item in body["items"]]

    assert await ids(status="sent_manually") == paid_b
    assert await ids(status="test") == [*ready_b, *ready_a]
    assert await ids(status="delivered") == []
    assert await ids(type="client_order.ready") == [*ready_b, *ready_a]
    assert await ids(client_id="C-B") == [*ready_b, *paid_b]
    assert await ids(client_id="C-B", type="client_order.ready") == ready_b
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    in_an_hour = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await ids(since=hour_ago) == [*ready_b, *paid_b, *ready_a]
    assert await ids(since=in_an_hour) == []
    # A time without a zone is UTC.
    naive_future = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    assert await ids(since=naive_future) == []


async def test_journal_pages_follow_the_cursor_to_the_end(service: Service) -> None:
    created = [i for n in range(7) for i in await post(service, event_id=f"erp-page-{n}")]

    pages: list[list[int]] = []
    cursor: str | None = None
    while True:
        query: dict[str, Any] = {"limit": 3}
        if cursor is not None:
            query["cursor"] = cursor
        status, body = await journal(service, **query)
        assert status == 200, body
        pages.append([item["id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 5, "the cursor must reach the end"

    assert [len(page) for page in pages] == [3, 3, 1]
    assert [i for page in pages for i in page] == sorted(created, reverse=True)


async def test_a_full_last_page_still_ends_with_a_null_cursor(service: Service) -> None:
    for n in range(4):
        await post(service, event_id=f"erp-even-{n}")

    _, first = await journal(service, limit=2)
    _, second = await journal(service, limit=2, cursor=first["next_cursor"])

    assert len(first["items"]) == 2 and first["next_cursor"]
    assert len(second["items"]) == 2 and second["next_cursor"] is None


async def test_the_cursor_keeps_the_filters_of_the_query(service: Service) -> None:
    mine = [i for n in range(3) for i in await post(service, client=client_body("C-MINE"))]
    await post(service, client=client_body("C-OTHER"))

    _, first = await journal(service, client_id="C-MINE", limit=2)
    _, second = await journal(service, client_id="C-MINE", limit=2, cursor=first["next_cursor"])

    ids = [item["id"] for item in first["items"] + second["items"]]
    assert ids == sorted(mine, reverse=True)
    assert second["next_cursor"] is None


def _cursor_of(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ({"status": "lost"}, "status"),
        ({"type": "order.unknown"}, "type"),
        ({"since": "yesterday"}, "since"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "not a cursor!"}, "cursor"),
        ({"cursor": _cursor_of("x:12")}, "cursor"),
        ({"cursor": _cursor_of("n:-3")}, "cursor"),
        ({"client_id": "x" * 65}, "client_id"),
        ({"statuses": "test"}, "statuses"),
    ],
)
async def test_bad_journal_filters_are_422(
    service: Service, query: dict[str, Any], where: str
) -> None:
    status, body = await journal(service, **query)

    assert status == 422
    error = assert_error(body, "validation_error")
    assert [detail["loc"][0] for detail in error["details"]] == [where]


async def test_limit_500_is_the_largest_page(service: Service) -> None:
    status, body = await journal(service, limit=500)
    assert status == 200 and body == {"items": [], "next_cursor": None}


async def test_one_notification_with_its_history(service: Service) -> None:
    [notification_id] = await post(service, event_id="erp-history")
    await service.admin(
        "POST",
        f"/api/v1/notifications/{notification_id}/status",
        json_body={"status": "sent_manually", "note": "Отправил сам в WhatsApp"},
    )

    status, body = await service.admin("GET", f"/api/v1/notifications/{notification_id}")

    assert status == 200
    assert set(body) == ITEM_KEYS | {"history", "actions_pressed"}
    assert body["actions_pressed"] == []
    assert body["event_id"] == "erp-history"
    assert body["status"] == "sent_manually"
    assert all(set(step) == HISTORY_KEYS for step in body["history"])
    assert [(s["from_status"], s["to_status"], s["actor"]) for s in body["history"]] == [
        (None, "test", "erp"),
        ("test", "sent_manually", "admin:api"),
    ]
    assert body["history"][1]["reason"] == "Отправил сам в WhatsApp"
    assert datetime.fromisoformat(body["history"][1]["at"]) >= datetime.fromisoformat(
        body["history"][0]["at"]
    )


@pytest.mark.parametrize("notification_id", ["999999", "abc", "0", "99999999999999999999999"])
async def test_unknown_notification_is_404(service: Service, notification_id: str) -> None:
    status, body = await service.admin("GET", f"/api/v1/notifications/{notification_id}")
    assert status == 404
    assert_error(body, "not_found")


# --- manual actions -------------------------------------------------------------------------


async def test_mark_sent_manually_then_cancel_is_refused_naming_the_status(
    service: Service,
) -> None:
    [notification_id] = await post(service)
    path = f"/api/v1/notifications/{notification_id}/status"

    status, body = await service.admin(
        "POST", path, json_body={"status": "sent_manually", "note": "позвонил"}
    )
    assert status == 200, body
    assert body["status"] == "sent_manually"
    assert body["reason"] == "позвонил"
    assert body["sent_at"] is not None
    assert body["history"][-1]["actor"] == "admin:api"

    status, body = await service.admin("POST", path, json_body={"status": "cancelled"})
    assert status == 409
    error = assert_error(body, "conflict")
    assert "sent_manually" in error["message"]
    assert error["details"] == [{"current_status": "sent_manually"}]


@pytest.mark.parametrize(
    "payload",
    [{"status": "delivered"}, {"status": "pending"}, {}, {"status": "cancelled", "extra": 1}],
)
async def test_only_sent_manually_and_cancelled_can_be_set(
    service: Service, payload: dict[str, Any]
) -> None:
    [notification_id] = await post(service)
    status, body = await service.admin(
        "POST", f"/api/v1/notifications/{notification_id}/status", json_body=payload
    )
    assert status == 422
    assert_error(body, "validation_error")
    assert (await one_notification(service))["status"] == "test"


async def test_status_change_without_a_body_is_400(service: Service) -> None:
    [notification_id] = await post(service)
    response = await service.client.post(
        f"/api/v1/notifications/{notification_id}/status",
        data=b"{not json",
        # Admin bodies must be declared JSON (else 415, issue 11); this one only is not JSON.
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert_error(await response.json(), "invalid_json")


async def test_actions_on_an_unknown_notification_are_404(service: Service) -> None:
    for action, payload in [
        ("status", {"status": "cancelled"}),
        ("confirm", None),
        ("cancel", None),
        ("resend", None),
    ]:
        status, body = await service.admin(
            "POST", f"/api/v1/notifications/424242/{action}", json_body=payload
        )
        assert status == 404, (action, body)
        assert_error(body, "not_found")


async def test_confirm_and_cancel_want_a_notification_awaiting_confirmation(
    service: Service,
) -> None:
    [notification_id] = await post(service)
    for action in ("confirm", "cancel"):
        status, body = await service.admin(
            "POST", f"/api/v1/notifications/{notification_id}/{action}"
        )
        assert status == 409, (action, body)
        error = assert_error(body, "conflict")
        assert "is test" in error["message"] and "awaiting_confirmation" in error["message"]


async def test_resend_in_test_mode_is_refused(service: Service) -> None:
    [notification_id] = await post(service)
    status, body = await service.admin("POST", f"/api/v1/notifications/{notification_id}/resend")
    assert status == 409
    error = assert_error(body, "conflict")
    assert error["message"] == "notify mode is test: nothing is sent"


async def test_live_confirm_releases_the_notification_for_sending(live_service: Service) -> None:
    await confirm_before_send(live_service)
    [notification_id] = await post(live_service, event_id="erp-confirm")
    item = await one_notification(live_service)
    assert (item["id"], item["status"]) == (notification_id, "awaiting_confirmation")

    status, body = await live_service.admin(
        "POST",
        f"/api/v1/notifications/{notification_id}/confirm",
        json_body={"note": "клиент ждёт"},
    )

    assert status == 200, body
    assert body["status"] == "pending"
    assert body["attempts"] == 0
    last = body["history"][-1]
    assert (last["from_status"], last["to_status"], last["actor"], last["reason"]) == (
        "awaiting_confirmation", "pending", "admin:api", "клиент ждёт"
    )  # fmt: skip
    async with live_service.db.sessions() as session:
        row = await session.get(Notification, notification_id)
    assert row is not None
    if row.status == "pending" and row.attempts == 0:  # no worker has touched it yet
        assert row.next_attempt_at is not None
        assert row.next_attempt_at <= datetime.now(UTC) + timedelta(seconds=1)

    # Whatever the workers did with it since, it no longer awaits confirmation.
    again, body = await live_service.admin(
        "POST", f"/api/v1/notifications/{notification_id}/confirm"
    )
    assert again == 409
    assert_error(body, "conflict")


async def test_live_cancel_then_resend(live_service: Service) -> None:
    await confirm_before_send(live_service)
    [notification_id] = await post(live_service)
    base = f"/api/v1/notifications/{notification_id}"

    status, body = await live_service.admin("POST", f"{base}/resend")
    assert status == 409, "awaiting confirmation is not a finished notification"
    assert "awaiting_confirmation" in assert_error(body, "conflict")["message"]

    status, body = await live_service.admin("POST", f"{base}/cancel")
    assert status == 200, body
    assert body["status"] == "cancelled"
    assert body["history"][-1]["actor"] == "admin:api"

    status, body = await live_service.admin("POST", f"{base}/cancel")
    assert status == 409
    assert "is cancelled" in assert_error(body, "conflict")["message"]
    status, body = await live_service.admin("POST", f"{base}/confirm")
    assert status == 409

    status, body = await live_service.admin(
        "POST", f"{base}/resend", json_body={"note": "ещё раз"}
    )
    assert status == 200, body
    assert (body["status"], body["attempts"], body["reason"]) == ("pending", 0, "ещё раз")
    assert [step["to_status"] for step in body["history"]] == [
        "awaiting_confirmation", "cancelled", "pending"
    ]  # fmt: skip


@pytest.mark.parametrize("queued", ["pending", "sending"])
async def test_a_queued_notification_is_not_resent(live_service: Service, queued: str) -> None:
    await confirm_before_send(live_service)
    [notification_id] = await post(live_service)
    # Parked an hour ahead, so no delivery worker takes it during the test.
    later = datetime.now(UTC) + timedelta(hours=1)
    async with live_service.db.transaction() as session:
        row = await session.get(Notification, notification_id)
        assert row is not None
        row.status, row.next_attempt_at, row.lease_until = queued, later, later

    status, body = await live_service.admin(
        "POST", f"/api/v1/notifications/{notification_id}/resend"
    )

    assert status == 409
    error = assert_error(body, "conflict")
    assert f"is {queued};" in error["message"]
    assert error["details"] == [{"current_status": queued}]


async def test_confirm_after_switching_to_test_mode_sends_nothing(live_service: Service) -> None:
    await confirm_before_send(live_service)
    [notification_id] = await post(live_service)
    status, _ = await live_service.admin("PUT", "/api/v1/settings", json_body={"mode": "test"})
    assert status == 200

    status, body = await live_service.admin(
        "POST", f"/api/v1/notifications/{notification_id}/confirm"
    )

    assert status == 200, body
    assert body["status"] == "test"
    assert "nothing is sent" in body["reason"]


async def test_confirm_in_mode_off_is_refused(live_service: Service) -> None:
    await confirm_before_send(live_service)
    [notification_id] = await post(live_service)
    await live_service.admin("PUT", "/api/v1/settings", json_body={"mode": "off"})

    status, body = await live_service.admin(
        "POST", f"/api/v1/notifications/{notification_id}/confirm"
    )

    assert status == 409
    assert assert_error(body, "conflict")["message"] == "notify mode is off: nothing is sent"
    assert (await one_notification(live_service))["status"] == "awaiting_confirmation"


async def test_not_sent_notification_is_marked_sent_manually_with_a_note(
    live_service: Service,
) -> None:
    code = "client_order.ready"
    status, _ = await live_service.admin(
        "PUT", f"/api/v1/event-types/{code}", json_body={"tracked_by_manager": True}
    )
    assert status == 200
    status, body = await live_service.admin(
        "PUT",
        "/api/v1/clients/C-1001",
        json_body={"name": "ООО Ромашка", "overrides": {code: {"send": False}}},
    )
    assert status == 201, body
    [notification_id] = await post(live_service, code)
    assert (await one_notification(live_service))["status"] == "not_sent"

    status, body = await live_service.admin(
        "POST",
        f"/api/v1/notifications/{notification_id}/status",
        json_body={"status": "sent_manually", "note": "Сообщил клиенту по телефону"},
    )

    assert status == 200, body
    assert body["status"] == "sent_manually"
    last = body["history"][-1]
    assert (last["from_status"], last["to_status"], last["actor"], last["reason"]) == (
        "not_sent", "sent_manually", "admin:api", "Сообщил клиенту по телефону"
    )  # fmt: skip


# --- settings -------------------------------------------------------------------------------


async def test_settings_show_the_effective_values_and_no_credentials(
    live_service: Service,
) -> None:
    status, body = await live_service.admin("GET", "/api/v1/settings")

    assert status == 200
    assert body["mode"] == "live"
    assert body["service"] == "telegram" and body["reserve"] == "sms"
    assert body["low_balance_threshold"] == 100
    assert body["sms_services"] == [{"name": "main", "kind": "http", "sender": "PARTS"}]
    assert "127.0.0.1:9" not in json.dumps(body)


async def test_settings_put_then_get_round_trip(service: Service) -> None:
    change = {
        "chat_enabled": True,
        "auto_reply": "Чат отключён. Позвоните менеджеру: +7 495 000-00-00",
        "low_balance_threshold": 50,
        "admin_emails": ["boss@example.com"],
    }
    status, put_body = await service.admin("PUT", "/api/v1/settings", json_body=change)
    assert status == 200, put_body
    status, get_body = await service.admin("GET", "/api/v1/settings")

    assert status == 200
    assert get_body == put_body
    assert {key: get_body[key] for key in change} == change
    assert get_body["mode"] == "test", "fields not in the PUT keep their values"

    _, again = await service.admin("PUT", "/api/v1/settings", json_body={"chat_enabled": False})
    assert again["chat_enabled"] is False
    assert again["low_balance_threshold"] == 50, "a second partial PUT keeps the first"


@pytest.mark.parametrize(
    ("change", "code", "where"),
    [
        ({"mode": "sideways"}, "validation_error", "mode"),
        ({"nonsense": 1}, "validation_error", "nonsense"),
        ({"low_balance_threshold": -5}, "validation_error", "low_balance_threshold"),
        ({"admin_emails": ["not-an-address"]}, "validation_error", "admin_emails"),
        ({"sms_services": []}, "validation_error", "sms_services"),
        ({"sms_service": "backup"}, "settings_rejected", None),
    ],
)
async def test_bad_settings_are_refused_and_nothing_changes(
    service: Service, change: dict[str, Any], code: str, where: str | None
) -> None:
    _, before = await service.admin("GET", "/api/v1/settings")

    status, body = await service.admin("PUT", "/api/v1/settings", json_body=change)

    assert status == 422
    error = assert_error(body, code)
    if where is not None:
        assert where in [detail["loc"][0] for detail in error["details"]]
    _, after = await service.admin("GET", "/api/v1/settings")
    assert after == before


async def test_settings_put_of_a_non_object_is_422(service: Service) -> None:
    status, body = await service.admin("PUT", "/api/v1/settings", json_body=["mode", "off"])
    assert status == 422
    assert_error(body, "validation_error")


# --- event types ----------------------------------------------------------------------------


async def test_event_types_list_all_sixteen_with_settings(service: Service) -> None:
    status, body = await service.admin("GET", "/api/v1/event-types")

    assert status == 200
    assert [item["code"] for item in body["items"]] == list(ALL_TYPES)
    ready = next(item for item in body["items"] if item["code"] == "client_order.ready")
    assert ready == {
        "code": "client_order.ready",
        "title": "Заказ клиента готов к выдаче",
        "description": EVENT_TYPES["client_order.ready"].description,
        "confirm_before_send": False,
        "send_to_client": True,
        "send_to_manager": False,
        "tracked_by_manager": False,
        "default_for_new_clients": True,
        "template_client": "events/client_order.ready.client.txt.j2",
        "template_manager": "events/client_order.ready.manager.txt.j2",
        "urgent": False,
    }
    status, one = await service.admin("GET", "/api/v1/event-types/client_order.ready")
    assert (status, one) == (200, ready)


async def test_unknown_event_type_is_404(service: Service) -> None:
    for method in ("GET", "PUT"):
        status, body = await service.admin(
            method, "/api/v1/event-types/order.unknown", json_body={"send_to_manager": True}
        )
        assert status == 404, method
        assert_error(body, "not_found")


async def test_the_next_event_follows_the_changed_event_type(service: Service) -> None:
    status, body = await service.admin(
        "PUT",
        "/api/v1/event-types/client_order.ready",
        json_body={"send_to_client": False, "send_to_manager": True},
    )
    assert status == 200, body
    assert (body["send_to_client"], body["send_to_manager"]) == (False, True)
    assert body["confirm_before_send"] is False, "untouched flags keep their values"

    status, posted = await service.post_event(make_event("client_order.ready"))
    assert status == 202
    assert [n["recipient"] for n in posted["notifications"]] == ["manager"]

    status, posted = await service.post_event(make_event("client_order.posted"))
    assert [n["recipient"] for n in posted["notifications"]] == ["client"], "other types unchanged"


async def test_an_event_type_can_use_another_template_file(service: Service) -> None:
    other = "events/payment.registered.client.txt.j2"
    status, body = await service.admin(
        "PUT", "/api/v1/event-types/client_order.ready", json_body={"template_client": other}
    )
    assert status == 200, body
    assert body["template_client"] == other
    await post(service, "payment.registered", event_id="erp-paid")
    await post(service, "client_order.ready", event_id="erp-ready")

    items = (await journal(service))[1]["items"]
    texts = {item["event_id"]: item["text"] for item in items}
    assert texts["erp-ready"] == texts["erp-paid"]

    status, body = await service.admin(
        "PUT", "/api/v1/event-types/client_order.ready", json_body={"template_client": None}
    )
    assert body["template_client"] == "events/client_order.ready.client.txt.j2"


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"template_client": "events/nothing.txt.j2"}, "template_client"),
        ({"template_manager": "../pyproject.toml"}, "template_manager"),
        ({"template_client": "/etc/passwd"}, "template_client"),
        ({"template_client": "events"}, "template_client"),
        ({"send_to_client": None}, "send_to_client"),
        ({"send_to_client": "sometimes"}, "send_to_client"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_event_type_changes_are_422_and_not_stored(
    service: Service, change: dict[str, Any], where: str
) -> None:
    path = "/api/v1/event-types/client_order.ready"
    _, before = await service.admin("GET", path)

    status, body = await service.admin("PUT", path, json_body=change)

    assert status == 422, body
    error = assert_error(body, "validation_error")
    assert where in [detail["loc"][0] for detail in error["details"]]
    _, after = await service.admin("GET", path)
    assert after == before


# --- client cards ---------------------------------------------------------------------------


async def test_a_new_client_card_needs_a_name(service: Service) -> None:
    status, body = await service.admin(
        "PUT", "/api/v1/clients/C-NEW", json_body={"phone": "89161234567"}
    )
    assert status == 422
    error = assert_error(body, "validation_error")
    assert error["details"][0]["loc"] == ["name"]
    status, _ = await service.admin("GET", "/api/v1/clients/C-NEW")
    assert status == 404


async def test_client_card_is_created_with_default_flags_then_updated(service: Service) -> None:
    status, body = await service.admin(
        "PUT",
        "/api/v1/clients/C-NEW",
        json_body={"name": "ИП Сидоров", "phone": "8 (916) 765-43-21", "category": "Розница"},
    )

    assert status == 201, body
    assert (body["id"], body["name"], body["phone"]) == ("C-NEW", "ИП Сидоров", "+79167654321")
    assert (body["category"], body["manager_id"], body["blocked"]) == ("Розница", None, False)
    assert body["telegram_linked"] is False
    assert set(body["overrides"]) == set(ALL_TYPES)
    assert all(
        override
        == {
            "send": True,
            "template_client": None,
            "template_manager": None,
            "template_attachment": None,
        }
        for override in body["overrides"].values()
    )
    status, fetched = await service.admin("GET", "/api/v1/clients/C-NEW")
    assert (status, fetched) == (200, body)

    status, updated = await service.admin(
        "PUT", "/api/v1/clients/C-NEW", json_body={"blocked": True, "manager_id": "M-7"}
    )
    assert status == 200, updated
    assert (updated["blocked"], updated["manager_id"]) == (True, "M-7")
    assert (updated["name"], updated["phone"]) == ("ИП Сидоров", "+79167654321")

    status, cleared = await service.admin(
        "PUT", "/api/v1/clients/C-NEW", json_body={"phone": None}
    )
    assert status == 200 and cleared["phone"] is None


async def test_new_client_flags_follow_default_for_new_clients(service: Service) -> None:
    await service.admin(
        "PUT",
        "/api/v1/event-types/payment.registered",
        json_body={"default_for_new_clients": False},
    )
    status, body = await service.admin("PUT", "/api/v1/clients/C-NEW", json_body={"name": "Новый"})
    assert status == 201
    assert body["overrides"]["payment.registered"]["send"] is False
    assert body["overrides"]["client_order.ready"]["send"] is True


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"name": "Кто-то", "phone": "позвоните мне"}, "phone"),
        ({"name": ""}, "name"),
        ({"name": None}, None),
        ({"name": "Кто-то", "blocked": "sometimes"}, "blocked"),
        ({"name": "Кто-то", "overrides": {"order.unknown": {"send": False}}}, "overrides"),
        ({"name": "Кто-то", "overrides": {"client_order.ready": {"sned": False}}}, "overrides"),
        ({"name": "Кто-то", "email": "x@example.com"}, "email"),
    ],
)
async def test_bad_client_cards_are_422(
    service: Service, payload: dict[str, Any], where: str | None
) -> None:
    status, body = await service.admin("PUT", "/api/v1/clients/C-1001", json_body=payload)
    assert status == 422, body
    error = assert_error(body, "validation_error")
    if where is not None:
        assert where in [detail["loc"][0] for detail in error["details"]]
    async with service.db.sessions() as session:
        assert await session.get(Client, "C-1001") is None


async def test_unknown_client_is_404(service: Service) -> None:
    status, body = await service.admin("GET", "/api/v1/clients/C-404")
    assert status == 404
    assert_error(body, "not_found")


async def test_client_ids_that_cannot_exist_are_refused_not_500(service: Service) -> None:
    # A NUL in the path once reached PostgreSQL, which refused the query: a 500.
    for client_id in ("C-%00", "C" * 65):
        status, body = await service.admin("GET", f"/api/v1/clients/{client_id}")
        assert status == 404
        assert_error(body, "not_found")
        status, body = await service.admin("GET", f"/api/v1/clients/{client_id}/telegram-link")
        assert status == 404
        status, body = await service.admin(
            "PUT", f"/api/v1/clients/{client_id}", json_body={"name": "Кто-то"}
        )
        assert status == 422
        assert_error(body, "validation_error")


async def test_client_opt_out_suppresses_that_type_only(service: Service) -> None:
    await post(service, event_id="erp-before")  # the ERP introduces the client
    status, body = await service.admin(
        "PUT",
        "/api/v1/clients/C-1001",
        json_body={"overrides": {"client_order.ready": {"send": False}}},
    )
    assert status == 200, body
    assert body["overrides"]["client_order.ready"]["send"] is False
    assert body["overrides"]["client_order.posted"]["send"] is True

    status, ready = await service.post_event(make_event("client_order.ready"))
    assert status == 202 and ready["notifications"] == []
    status, posted = await service.post_event(make_event("client_order.posted"))
    assert [n["recipient"] for n in posted["notifications"]] == ["client"]


async def test_a_client_template_is_used_for_the_next_event(service: Service) -> None:
    own = "{{ client.name }}, заказ {{ document.number }} ждёт вас на складе."
    status, body = await service.admin(
        "PUT",
        "/api/v1/clients/C-1001",
        json_body={
            "name": "ООО Ромашка",
            "overrides": {"client_order.ready": {"template_client": own}},
        },
    )
    assert status == 201, body
    assert body["overrides"]["client_order.ready"] == {
        "send": True, "template_client": own, "template_manager": None,
        "template_attachment": None,
    }  # fmt: skip

    await post(service, "client_order.ready", event_id="erp-own")
    await post(service, "client_order.posted", event_id="erp-default")

    texts = {item["event_id"]: item["text"] for item in (await journal(service))[1]["items"]}
    assert texts["erp-own"] == "ООО Ромашка, заказ ЗК-000123 ждёт вас на складе."
    assert "ждёт вас на складе" not in texts["erp-default"]


async def test_the_client_card_keeps_an_attachment_template_per_type(service: Service) -> None:
    """The seed's «Шаблоны вложений» on the client card: HTML, checked like the texts."""
    html = "<h1>Заказ {{ document.number }}</h1>\n<p>{{ client.name }}</p>"
    status, body = await service.admin(
        "PUT",
        "/api/v1/clients/C-1001",
        json_body={
            "name": "ООО <Ромашка>",
            "overrides": {"client_order.ready": {"template_attachment": html}},
        },
    )
    assert status == 201, body
    assert body["overrides"]["client_order.ready"]["template_attachment"] == html
    assert body["overrides"]["client_order.posted"]["template_attachment"] is None
    status, fetched = await service.admin("GET", "/api/v1/clients/C-1001")
    assert (status, fetched["overrides"]) == (200, body["overrides"])

    status, refused = await service.admin(
        "PUT",
        "/api/v1/clients/C-1001",
        json_body={
            "overrides": {"client_order.ready": {"template_attachment": "<p>\n{{ x.y "}}
        },
    )
    assert status == 422, refused
    [detail] = refused["error"]["details"]
    assert detail["loc"] == ["overrides", "client_order.ready", "template_attachment"]
    assert detail["line"] == 2
    assert "client_order.ready, attachment (HTML)" in detail["message"]
    _, kept = await service.admin("GET", "/api/v1/clients/C-1001")
    assert kept["overrides"]["client_order.ready"]["template_attachment"] == html


@pytest.mark.parametrize(
    "source",
    [
        "Заказ {{ document.number ",
        "{% for line in document.lines %}{{ line.name }}",
        "{{ document.number | no_such_filter }}",
    ],
)
async def test_a_broken_client_template_is_422_and_not_stored(
    service: Service, source: str
) -> None:
    await post(service)
    status, body = await service.admin(
        "PUT",
        "/api/v1/clients/C-1001",
        json_body={
            "category": "VIP",
            "overrides": {"client_order.ready": {"template_client": source}},
        },
    )

    assert status == 422, body
    error = assert_error(body, "validation_error")
    assert error["details"][0]["loc"] == ["overrides", "client_order.ready", "template_client"]
    assert "per-client template" in error["message"]
    async with service.db.sessions() as session:
        stored = await session.get(ClientTypeSetting, ("C-1001", "client_order.ready"))
        client = await session.get(Client, "C-1001")
    assert stored is not None and stored.template_client is None
    assert client is not None and client.category == "Опт", "nothing of the PUT is stored"
