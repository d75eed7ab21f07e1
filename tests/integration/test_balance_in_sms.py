"""The balance counted in SMS (CONTRACT §8): the threshold is a number of SMS left, the
money balance is converted with the price of one segment — the provider's price API
(SMSC, SMS.ru), else the average recorded cost of the last sends, else `price_per_sms` —
and the admin API, `vestnik balance`, the bot's /balance and the alerts all say so.

Everything runs for real: Vestnik on loopback with its scheduler, the SMSC / SMS.ru /
`http` fakes, an aiosmtpd server and the fake Telegram Bot API driving the real aiogram.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from bot.cli.sms import print_balance
from storage.models import Notification
from storage.types import utcnow
from tests.conftest import Service, live_settings, start_service
from tests.fakes.sms import FakeSmsServer
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.sms_smsc import FakeSmsc
from tests.fakes.sms_smsru import FakeSmsRu
from tests.fakes.smtp import FakeSmtp
from tests.fakes.telegram import FakeTelegram
from tests.integration.test_bot_support import add_manager, say
from tests.integration.test_scheduler import (
    ADMIN_CHAT,
    ADMINS,
    add_managers,
    at,
    priced,
    scheduler_of,
)

ADMIN_BOT_CHAT = 777_501


def smsc_service(fake: FakeSmsc, **extra: Any) -> dict[str, Any]:
    return {
        "name": "main",
        "kind": "smsc",
        "base_url": fake.base_url,
        "login": fake.login,
        "password": fake.password,
        "timeout_seconds": 2,
        **extra,
    }


@pytest.fixture
async def smtp() -> AsyncIterator[FakeSmtp]:
    async with FakeSmtp() as server:
        yield server


@pytest.fixture
async def smsc() -> AsyncIterator[FakeSmsc]:
    fake = FakeSmsc(balance=Decimal("250.00"))
    fake.price_per_part = Decimal("2.50")
    async with fake:
        yield fake


@dataclass
class Shop:
    """What surrounds Vestnik here: its database, the fake Telegram, the fake `http` SMS
    gateway and the SMTP server; `start()` runs Vestnik among them."""

    database_url: str
    telegram: FakeTelegram
    sms_gateway: FakeHttpGateway
    smtp: FakeSmtp
    running: list[Service] = field(default_factory=list)

    async def start(
        self, service: dict[str, Any] | None = None, *, price_per_sms: str | None = None
    ) -> Service:
        """Live Vestnik with threshold 100 SMS, two admin addresses, and the one SMS service
        given (default: the fake `http` gateway, which has no price API)."""
        settings = live_settings(
            self.database_url,
            self.telegram,
            self.sms_gateway,
            notify={"low_balance_threshold": 100, "admin_emails": ADMINS},
            smtp=self.smtp.settings(),
            scheduler={"balance_check_seconds": 600},
            **({} if service is None else {"sms_services": [service]}),
        )
        if price_per_sms is not None:
            settings = priced(settings, price_per_sms)
        self.running.append(await start_service(settings))
        return self.running[-1]


@pytest.fixture
async def shop(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway, smtp: FakeSmtp
) -> AsyncIterator[Shop]:
    around = Shop(database_url, telegram, sms_gateway, smtp)
    try:
        yield around
    finally:
        for service in around.running:
            await service.client.close()


async def balance_of(service: Service) -> dict[str, Any]:
    status, body = await service.admin("GET", "/api/v1/balance")
    assert status == 200, body
    return dict(body)


async def send_test_sms(service: Service) -> int:
    """The test SMS through the admin API, journaled with its cost; returns its segments."""
    status, sent = await service.admin(
        "POST", "/api/v1/test-sms", json_body={"phone": "+79161234567"}
    )
    assert status == 200, sent
    return int(sent["segments"])


async def cli_line(service: Service, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    await asyncio.to_thread(print_balance, service.settings, None)
    return capsys.readouterr().out.strip()


def seen(html: str | None) -> str:
    """A bot message as the user sees it: HTML tags rendered away."""
    return re.sub(r"<[^>]+>", "", html or "")


def price_calls(fake: FakeSmsServer, path: str) -> int:
    return fake.paths[path]


async def test_250_roubles_at_2_50_a_segment_are_100_sms_which_is_not_below_100(
    shop: Shop, smsc: FakeSmsc, capsys: pytest.CaptureFixture[str]
) -> None:
    service = await shop.start(smsc_service(smsc))
    body = await balance_of(service)
    assert body == {
        "service": "main",
        "kind": "smsc",
        "balance": "250.00",
        "currency": "RUB",
        "price_per_sms": "2.50",
        "price_source": "provider",
        "sms_left": 100,
        "threshold": 100,
        "below_threshold": False,
        "state": "ok",
        "alert_active": False,
        "spent_per_day": None,
        "days_left": None,
    }
    # SMSC was asked the price (send.php with cost=1) and sent nothing.
    assert smsc.sent == []
    assert price_calls(smsc, "/sys/send.php") == 1
    # The price is kept: SMSC refuses a sixth identical cost request within a minute.
    await balance_of(service)
    assert price_calls(smsc, "/sys/send.php") == 1

    line = await cli_line(service, capsys)
    assert line == (
        "main (smsc): balance 250.00 RUB = 100 SMS at 2.50 (provider price); "
        "at or above threshold 100 SMS; alert armed"
    )
    run = await scheduler_of(service).run_job_now("balance", now=at(0))
    assert run.result is not None
    assert (run.result["sms_left"], run.result["alerts"]) == (100, [])
    assert shop.smtp.received == []


async def test_at_240_roubles_the_admins_get_exactly_one_alert_saying_96_sms(
    shop: Shop, smsc: FakeSmsc
) -> None:
    smsc.balance = Decimal("240.00")
    service = await shop.start(smsc_service(smsc))
    await add_managers(service)
    scheduler = scheduler_of(service)
    runs = [await scheduler.run_job_now("balance", now=at(step)) for step in range(3)]
    assert [run.result["alerts"] for run in runs if run.result] == [["low_balance"], [], []]
    assert runs[0].result is not None and runs[0].result["sms_left"] == 96

    [mail] = await shop.smtp.wait_for(1)
    assert "осталось примерно 96 SMS" in mail.subject
    assert "Осталось примерно 96 SMS (240,00 ₽ по 2,50 ₽)." in mail.body
    assert "Порог уведомления: 100 SMS" in mail.body
    assert "Цена одного SMS: 2,50 ₽ (по данным сервиса)" in mail.body
    [text] = [m.text or "" for m in shop.telegram.messages_to(ADMIN_CHAT)]
    assert "осталось примерно 96 SMS (240,00 ₽ по 2,50 ₽) при пороге 100 SMS" in text

    body = await balance_of(service)
    assert (body["sms_left"], body["state"], body["alert_active"]) == (96, "below", True)
    assert len(shop.smtp.received) == 1, "one alert per crossing"


async def test_the_bots_balance_speaks_in_sms_and_money(shop: Shop, smsc: FakeSmsc) -> None:
    service = await shop.start(smsc_service(smsc))
    await add_manager(service, is_admin=True, chat_id=ADMIN_BOT_CHAT)
    [reply] = await say(shop.telegram, shop.telegram.command(ADMIN_BOT_CHAT, "/balance"))
    text = seen(reply.text)
    assert "SMS-сервис main: осталось примерно 100 SMS (250,00 ₽ по 2,50 ₽)" in text
    assert "Порог уведомления: 100 SMS." in text

    smsc.balance = Decimal("240.00")
    [reply] = await say(shop.telegram, shop.telegram.command(ADMIN_BOT_CHAT, "/balance"))
    text = seen(reply.text)
    assert "осталось примерно 96 SMS (240,00 ₽ по 2,50 ₽)" in text
    assert "Меньше порога в 100 SMS — пора пополнить." in text


async def test_smsru_prices_a_segment_with_sms_cost(shop: Shop) -> None:
    async with FakeSmsRu(balance=Decimal("240.00")) as smsru:
        smsru.price_per_part = Decimal("2.50")
        config = {
            "name": "main",
            "kind": "smsru",
            "base_url": smsru.base_url,
            "api_key": smsru.api_id,
            "timeout_seconds": 2,
        }
        service = await shop.start(config)
        body = await balance_of(service)
    assert (body["price_per_sms"], body["price_source"]) == ("2.50", "provider")
    assert (body["sms_left"], body["state"]) == (96, "below")
    assert price_calls(smsru, "/sms/cost") == 1
    assert smsru.sent == []


async def test_without_a_price_the_sms_are_unknown_until_a_send_records_its_cost(
    shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    # The `http` kind has no price API, and no price_per_sms is configured.
    shop.sms_gateway.price_per_part = Decimal("3.00")
    shop.sms_gateway.balance = Decimal("30.00")
    service = await shop.start()
    body = await balance_of(service)
    assert (body["price_per_sms"], body["sms_left"], body["state"]) == (None, None, "unknown")
    assert await cli_line(service, capsys) == (
        "main (http): balance 30.0 RUB; SMS left unknown (no price of one SMS: "
        "set price_per_sms); threshold 100 SMS not checked"
    )
    # Nothing to compare with: no alert, however low the money.
    run = await scheduler_of(service).run_job_now("balance", now=at(0))
    assert run.result is not None
    assert (run.result["sms_left"], run.result["alerts"]) == (None, [])

    # The test SMS records its cost: 3.00 a part.
    parts = await send_test_sms(service)
    spent = 3 * parts
    left = Decimal(30 - spent)
    body = await balance_of(service)
    assert (Decimal(body["balance"]), body["price_per_sms"], body["price_source"]) == (
        left,
        "3.00",
        "recorded",
    )
    assert (body["sms_left"], body["state"]) == (int(left) // 3, "below")
    # A service younger than a day spreads its spending over one day.
    assert (body["spent_per_day"], body["days_left"]) == (
        f"{spent}.00",
        round(float(left) / spent, 1),
    )

    run = await scheduler_of(service).run_job_now("balance", now=at(1))
    assert run.result is not None
    assert run.result["alerts"] == ["low_balance"]
    [mail] = await shop.smtp.wait_for(1)
    assert f"Осталось примерно {int(left) // 3} SMS ({left},00 ₽ по 3,00 ₽)." in mail.body
    assert "средняя по последним отправкам" in mail.body


async def test_price_per_sms_counts_until_sends_record_what_they_cost(
    shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    shop.sms_gateway.balance = Decimal("1000.00")
    shop.sms_gateway.price_per_part = Decimal("1.90")
    service = await shop.start(price_per_sms="2.00")
    body = await balance_of(service)
    assert (body["price_per_sms"], body["price_source"], body["sms_left"]) == (
        "2.00",
        "configured",
        500,
    )
    assert await cli_line(service, capsys) == (
        "main (http): balance 1000.0 RUB = 500 SMS at 2.00 (configured price); "
        "at or above threshold 100 SMS; alert armed"
    )

    # What the provider really charged wins over the configured guess.
    parts = await send_test_sms(service)
    body = await balance_of(service)
    assert (body["price_per_sms"], body["price_source"]) == ("1.90", "recorded")
    left = Decimal(1000) - parts * Decimal("1.90")
    assert body["sms_left"] == int(left / Decimal("1.90"))


async def test_days_left_come_from_the_spending_of_the_last_seven_days(
    shop: Shop, smsc: FakeSmsc, capsys: pytest.CaptureFixture[str]
) -> None:
    smsc.balance = Decimal("996.20")
    service = await shop.start(smsc_service(smsc))
    now = utcnow()

    def sent(days_ago: float, cost: str, provider: str = "main") -> Notification:
        return Notification(
            event_type="client_order.ready",
            recipient="client",
            channel="sms",
            phone="+79161234567",
            status="delivered",
            provider=provider,
            cost=Decimal(cost),
            provider_parts=1,
            segments=1,
            sent_at=now - timedelta(days=days_ago),
        )

    async with service.db.transaction() as session:
        # A week of sends: 7 × 41.30; older ones and another service's do not count.
        session.add_all([sent(day + 0.5, "41.30") for day in range(7)])
        session.add_all([sent(10, "500.00"), sent(1, "99.00", provider="reserve")])
    body = await balance_of(service)
    assert {key: body[key] for key in ("balance", "price_per_sms", "sms_left")} == {
        "balance": "996.20",
        "price_per_sms": "2.50",
        "sms_left": 398,
    }
    assert (body["spent_per_day"], body["days_left"]) == ("41.30", 24.1)
    assert (await cli_line(service, capsys)).endswith("; spending 41.30 RUB a day, 24.1 days left")
