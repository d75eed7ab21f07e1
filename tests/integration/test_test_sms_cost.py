"""The test SMS costs one SMS, as `vestnik test-sms --help` and the docs say.

Scenario: an admin checks the SMS setup from the bot (`/testsms`) and from the admin API;
each sends one Cyrillic message of one segment, and the gateway bills one part for it.
"""

from __future__ import annotations

from decimal import Decimal

from dispatch.render.segments import segment_text
from tests.conftest import Service
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram
from tests.integration.test_bot_support import MANAGER_CHAT, add_manager, say


async def test_the_test_sms_is_one_segment_from_the_bot_and_the_api(
    live_service: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    await add_manager(live_service, is_admin=True, chat_id=MANAGER_CHAT)
    sms_gateway.price_per_part = Decimal("2.50")

    [reply] = await say(telegram, telegram.command(MANAGER_CHAT, "/testsms", "+79161234567"))
    status, body = await live_service.admin(
        "POST", "/api/v1/test-sms", json_body={"phone": "+79161234567"}
    )

    assert "отправлено" in (reply.text or "") and "частей: 1" in (reply.text or ""), reply.text
    assert (status, body["segments"]) == (200, 1), body
    by_bot, by_api = sms_gateway.sent
    assert by_bot.text == by_api.text
    figures = segment_text(by_bot.text)
    assert (figures.encoding, figures.segments) == ("ucs2", 1)
    assert "тестовое SMS" in by_bot.text
    assert sms_gateway.price(by_bot.text) == (1, Decimal("2.50"))
