"""Live delivery, as a client and a manager experience it.

The ERP posts an event; the subscribed client's Telegram shows the text; the unsubscribed
or blocked one gets an SMS from the provider; failures retry and then fail with a reason;
the journal says what happened at every step.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select, update

from handlers.common.keys import SCHEDULER
from storage.models import Notification, TelegramLink
from storage.types import utcnow
from tests.conftest import Service, live_settings, start_service
from tests.events import make_event
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram

CLIENT_CHAT = 555_001
MANAGER_CHAT = 777_007


async def subscribe_client(service: Service, chat_id: int = CLIENT_CHAT) -> None:
    status, body = await service.admin(
        "PUT",
        "/api/v1/clients/C-1001",
        json_body={"name": "ООО Ромашка", "phone": "+7 916 123-45-67", "manager_id": "M-7"},
    )
    assert status in (200, 201), body
    await service.link_chat(chat_id, client_id="C-1001")


async def post(service: Service, event: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    status, body = await service.post_event(event or make_event("client_order.ready"))
    assert status == 202, body
    return list(body["notifications"])


async def test_subscribed_client_reads_the_order_ready_message_in_telegram(
    live_service: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    await subscribe_client(live_service)

    [note] = await post(live_service)
    assert (note["channel"], note["status"]) == ("telegram", "pending")
    row = await live_service.wait_for_status(note["id"], "sent")

    [message] = telegram.messages_to(CLIENT_CHAT)
    assert "ЗК-000123" in message.text
    assert message.parse_mode == "HTML"  # the type's Telegram text (client_telegram.html.j2)
    assert row.channel == "telegram"
    assert row.telegram_message_id == message.message_id
    assert row.attempts == 1
    assert sms_gateway.sent == []
    assert [step[:2] for step in await live_service.history(note["id"])] == [
        (None, "pending"),
        ("pending", "sending"),
        ("sending", "sent"),
    ]


async def test_unsubscribed_client_gets_an_sms_from_the_provider(
    live_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    [note] = await post(live_service)
    assert note["channel"] == "sms"
    row = await live_service.wait_for_status(note["id"], "sent")

    [sms] = sms_gateway.sent
    assert sms.phone == "+79161234567"
    assert "ЗК-000123" in sms.text
    assert sms.sender == "PARTS"
    assert sms.client_id == str(note["id"])
    assert (row.provider, row.provider_message_id) == ("main", sms.provider_id)
    assert row.provider_parts == sms.parts
    assert row.cost == sms.cost


async def test_client_who_blocked_the_bot_gets_the_sms_in_the_same_attempt(
    live_service: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    await subscribe_client(live_service)
    telegram.block(CLIENT_CHAT)

    [note] = await post(live_service)
    row = await live_service.wait_for_status(note["id"], "sent")

    assert row.channel == "sms"
    assert row.attempts == 1
    assert len(sms_gateway.sent) == 1
    steps = await live_service.history(note["id"])
    assert any(
        "blocked" in (reason or "") and "reserve route sms" in (reason or "")
        for _, _, reason in steps
    )
    async with live_service.db.sessions() as session:
        link = (await session.execute(select(TelegramLink))).scalar_one()
    assert link.blocked is True

    # The next event goes straight to SMS: the chat is known to be blocked.
    [second] = await post(live_service)
    assert second["channel"] == "sms"


async def test_chat_not_found_takes_the_reserve_route(
    live_service: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    await subscribe_client(live_service)
    telegram.fail_next("sendMessage", chat_id=CLIENT_CHAT, error="chat_not_found")

    [note] = await post(live_service)
    row = await live_service.wait_for_status(note["id"], "sent")
    assert row.channel == "sms"
    assert len(sms_gateway.sent) == 1


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_telegram_429_waits_retry_after_then_sends(
    live_service: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    await subscribe_client(live_service)
    telegram.fail_next("sendMessage", error="retry_after", retry_after=1)

    [note] = await post(live_service)
    row = await live_service.wait_for_status(note["id"], "sent")

    assert row.channel == "telegram"
    assert row.attempts == 2
    assert len(telegram.messages_to(CLIENT_CHAT)) == 1
    assert sms_gateway.sent == []
    reasons = [reason or "" for *_, reason in await live_service.history(note["id"])]
    assert any("will retry in 1 s" in reason for reason in reasons)


async def test_telegram_server_errors_are_retried_with_backoff(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await subscribe_client(live_service)
    telegram.fail_next("sendMessage", error="server_error", times=2)

    [note] = await post(live_service)
    row = await live_service.wait_for_status(note["id"], "sent")
    assert (row.channel, row.attempts) == ("telegram", 3)


async def test_sms_outage_retries_then_succeeds(
    live_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    sms_gateway.fail_next("server_error", times=2)
    sms_gateway.fail_next("timeout")

    [note] = await post(live_service)
    row = await live_service.wait_for_status(note["id"], "sent", within=15)
    assert row.attempts == 4
    assert len(sms_gateway.sent) == 1


async def test_invalid_number_fails_at_once_with_the_providers_reason(
    live_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    sms_gateway.fail_next("invalid_number")

    [note] = await post(live_service)
    row = await live_service.wait_for_status(note["id"], "failed")
    assert row.attempts == 1
    assert row.reason


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_persistent_failure_gives_up_after_max_attempts(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    settings = live_settings(database_url, telegram, sms_gateway, delivery={"max_attempts": 3})
    service = await start_service(settings)
    try:
        sms_gateway.fail_next("server_error", times=100)
        [note] = await post(service)
        row = await service.wait_for_status(note["id"], "failed")
    finally:
        await service.client.close()
    assert row.attempts == 3
    assert "gave up after 3 attempts" in (row.reason or "")
    assert sms_gateway.sent == []


async def test_blocked_bot_and_reserve_off_fails_with_the_reason(
    live_service: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    await subscribe_client(live_service)
    status, _ = await live_service.admin("PUT", "/api/v1/settings", json_body={"reserve": "none"})
    assert status == 200
    telegram.block(CLIENT_CHAT)

    [note] = await post(live_service)
    row = await live_service.wait_for_status(note["id"], "failed")
    assert "reserve route is off" in (row.reason or "")
    assert sms_gateway.sent == []


async def test_manager_gets_the_manager_text_in_telegram(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await live_service.admin(
        "PUT", "/api/v1/event-types/client_order.ready", json_body={"send_to_manager": True}
    )
    for first in await post(live_service):  # creates the client and the manager
        await live_service.wait_for_status(first["id"], "sent")
    await live_service.link_chat(MANAGER_CHAT, manager_id="M-7")

    notes = await post(live_service)
    manager_note = next(n for n in notes if n["recipient"] == "manager")
    await live_service.wait_for_status(manager_note["id"], "sent")
    [message] = telegram.messages_to(MANAGER_CHAT)
    assert "ООО Ромашка" in message.text


async def test_delivery_receipt_marks_the_sms_delivered(
    live_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    [note] = await post(live_service)
    row = await live_service.wait_for_status(note["id"], "sent")
    url = str(live_service.client.make_url("/api/v1/providers/main/status"))

    sms_gateway.deliver(row.provider_message_id or "")
    async with aiohttp.ClientSession() as http:
        status, _ = await sms_gateway.callback(row.provider_message_id or "", url).post(http)
        unknown = await http.post(
            url,
            json={"id": "no-such-id", "status": "delivered"},
            headers={"Authorization": f"Bearer {sms_gateway.token}"},
        )
        unknown_status = unknown.status
        forged = await http.post(url, json={"id": row.provider_message_id, "status": "failed"})

    assert status == 200
    assert unknown_status == 200
    assert forged.status == 401
    delivered = await live_service.wait_for_status(note["id"], "delivered")
    assert delivered.delivered_at is not None


async def test_a_receipt_faster_than_our_commit_is_applied_with_it(
    live_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    """The provider reports "delivered" before it even answers the send, so before our
    "sent" row (with its id) exists. The receipt is parked, not lost, and applied in the
    very transaction that records the send."""
    sms_gateway.report_before_reply = str(
        live_service.client.make_url("/api/v1/providers/main/status")
    )
    [note] = await post(live_service)

    delivered = await live_service.wait_for_status(note["id"], "delivered")

    assert sms_gateway.early_report_statuses == [200]  # answered 2xx: no retry loop
    assert delivered.provider_message_id is not None
    history = await live_service.history(note["id"])
    assert [step[:2] for step in history][-2:] == [("sending", "sent"), ("sent", "delivered")]
    # Nothing is left parked for the receipts job.
    run = await live_service.app[SCHEDULER].run_job_now(
        "receipts", now=utcnow() + timedelta(hours=1)
    )
    assert run.result is not None, run
    assert (run.result["applied"], run.result["parked"]) == (0, 0), run


async def _set_provider_id(service: Service, notification_id: int, value: str | None) -> None:
    async with service.db.transaction() as session:
        await session.execute(
            update(Notification)
            .where(Notification.id == notification_id)
            .values(provider_message_id=value)
        )


async def test_a_parked_receipt_is_applied_by_the_receipts_job(
    live_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    """A report parked for a message id that a notification gets only later, by another
    way than our own send (e.g. the row was recorded by another replica that stopped before
    applying it): the receipts job applies it."""
    url = str(live_service.client.make_url("/api/v1/providers/main/status"))
    [note] = await post(live_service)
    row = await live_service.wait_for_status(note["id"], "sent")
    pmid = row.provider_message_id or ""
    async with live_service.db.transaction() as session:  # as if not recorded yet
        await session.execute(
            update(Notification)
            .where(Notification.id == note["id"])
            .values(provider_message_id=None)
        )
    sms_gateway.deliver(pmid)
    async with aiohttp.ClientSession() as http:
        status, _ = await sms_gateway.callback(pmid, url).post(http)
    assert status == 200
    async with live_service.db.transaction() as session:
        await session.execute(
            update(Notification)
            .where(Notification.id == note["id"])
            .values(provider_message_id=pmid)
        )

    run = await live_service.app[SCHEDULER].run_job_now(
        "receipts", now=utcnow() + timedelta(hours=1)
    )

    assert run.result is not None and run.result["applied"] == 1, run
    await live_service.wait_for_status(note["id"], "delivered")


async def test_a_receipt_for_a_final_notification_is_not_parked(
    live_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    [note] = await post(live_service)
    row = await live_service.wait_for_status(note["id"], "sent")
    url = str(live_service.client.make_url("/api/v1/providers/main/status"))
    sms_gateway.deliver(row.provider_message_id or "")
    async with aiohttp.ClientSession() as http:
        for _ in range(2):  # the provider repeats its report
            status, _ = await sms_gateway.callback(row.provider_message_id or "", url).post(http)
            assert status == 200
    await live_service.wait_for_status(note["id"], "delivered")

    run = await live_service.app[SCHEDULER].run_job_now("receipts", now=utcnow())

    assert run.result is not None, run
    assert (run.result["applied"], run.result["parked"]) == (0, 0), run


async def test_resend_after_failure_delivers(
    live_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    sms_gateway.fail_next("invalid_number")
    [note] = await post(live_service)
    await live_service.wait_for_status(note["id"], "failed")

    status, body = await live_service.admin("POST", f"/api/v1/notifications/{note['id']}/resend")
    assert status == 200, body
    row = await live_service.wait_for_status(note["id"], "sent")
    assert row.attempts == 1
    assert len(sms_gateway.sent) == 1


async def test_confirmation_then_delivery(
    live_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    await live_service.admin(
        "PUT", "/api/v1/event-types/client_order.ready", json_body={"confirm_before_send": True}
    )
    [note] = await post(live_service)
    assert note["status"] == "awaiting_confirmation"
    await asyncio.sleep(0.3)
    assert sms_gateway.sent == []

    status, _ = await live_service.admin("POST", f"/api/v1/notifications/{note['id']}/confirm")
    assert status == 200
    await live_service.wait_for_status(note["id"], "sent")
    assert len(sms_gateway.sent) == 1


async def test_balance_and_test_sms_through_the_admin_api(
    live_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    status, body = await live_service.admin("GET", "/api/v1/balance")
    assert status == 200, body
    assert body["service"] == "main"
    assert Decimal(body["balance"]) == Decimal(1000)
    assert body["below_threshold"] is False

    status, body = await live_service.admin(
        "POST", "/api/v1/test-sms", json_body={"phone": "8 (916) 765-43-21"}
    )
    assert status == 200, body
    assert body["status"] == "sent"
    [sms] = sms_gateway.sent
    assert sms.phone == "+79167654321"
    async with live_service.db.sessions() as session:
        row = await session.get(Notification, body["notification_id"])
    assert row is not None
    assert (row.event_type, row.status) == ("test_sms", "sent")

    sms_gateway.fail_next("no_money")
    status, body = await live_service.admin(
        "POST", "/api/v1/test-sms", json_body={"phone": "+79167654321"}
    )
    assert status == 502
    assert body["status"] == "failed"
    assert body["error"] == "no_money"

    status, body = await live_service.admin(
        "POST", "/api/v1/test-sms", json_body={"phone": "not a phone"}
    )
    assert status == 422


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_shutdown_releases_what_is_in_flight(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    sms_gateway.latency = 3.0
    settings = live_settings(
        database_url,
        telegram,
        sms_gateway,
        delivery={"shutdown_grace_seconds": 0.2},
        sms_services=[
            {
                "name": "main",
                "kind": "http",
                "base_url": sms_gateway.base_url,
                "token": sms_gateway.token,
                "timeout_seconds": 10,
            }
        ],
    )
    service = await start_service(settings)
    [note] = await post(service)
    await service.wait_for_status(note["id"], "sending")
    await service.client.close()

    restarted = await start_service(
        settings.model_copy(
            update={"delivery": settings.delivery.model_copy(update={"poll_seconds": 60})}
        )
    )
    try:
        async with restarted.db.sessions() as session:
            row = await session.get(Notification, note["id"])
        assert row is not None
        assert row.status in ("pending", "sending", "sent")
        if row.status == "pending":
            steps = await restarted.history(note["id"])
            assert steps[-1] == ("sending", "pending", "released at shutdown")
    finally:
        await restarted.client.close()
