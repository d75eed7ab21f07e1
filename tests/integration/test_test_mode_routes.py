"""Test mode tells the truth about routes (CONTRACT §4): a notification keeps status `test`
and its text and segment figures, but where live mode would skip it the journal says so
instead of naming a channel it could not use."""

from __future__ import annotations

import asyncio

from tests.conftest import Service
from tests.events import make_event
from tests.fakes.sms_http import FakeHttpGateway


async def test_without_an_sms_service_the_row_says_live_mode_would_skip_it(
    service: Service,
) -> None:
    status, body = await service.post_event(make_event("client_order.ready"))
    assert status == 202, body
    [summary] = body["notifications"]
    assert (summary["status"], summary["channel"]) == ("test", None)

    status, note = await service.admin("GET", f"/api/v1/notifications/{summary['id']}")
    assert status == 200, note
    assert (note["status"], note["channel"]) == ("test", None)
    assert note["reason"].startswith("would be skipped: ")
    assert "no SMS service" in note["reason"]
    # What test mode is for: the text and what it would cost are there all the same.
    assert note["text"].startswith("Заказ №ЗК-000123")
    assert (note["encoding"], note["segments"]) == ("ucs2", 1)
    assert [step["reason"] for step in note["history"]] == [note["reason"]]


async def test_with_an_sms_service_the_row_names_the_sms_route_and_sends_nothing(
    sms_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    status, body = await sms_service.post_event(make_event("client_order.ready"))
    assert status == 202, body
    [summary] = body["notifications"]

    status, note = await sms_service.admin("GET", f"/api/v1/notifications/{summary['id']}")
    assert status == 200, note
    assert (note["status"], note["channel"]) == ("test", "sms")
    assert note["reason"] == "client is not subscribed to the bot; reserve route sms"
    await asyncio.sleep(0.3)  # the workers' chance to (wrongly) pick it up
    assert sms_gateway.sent == []
