"""The balance monitor as the admins live it: the SMS provider's balance falls, they get one
e-mail (a real SMTP server on loopback) and one Telegram message per fall, never more, on
one replica or three.

Job runs are triggered with `app[SCHEDULER].run_job_now(name, now=...)` at explicit slot
times, through the same slot claim APScheduler's triggers use (those are paused here).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.cli.sms import print_balance
from bot.scheduler import AppScheduler, JobRunResult, slot_of
from bot.settings import Settings
from handlers.common.keys import SCHEDULER
from storage import directory
from storage.models import JobRun, OutboxEmail
from storage.ops import alerts
from tests.conftest import Service, live_settings, start_service
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.smtp import FakeSmtp
from tests.fakes.telegram import FakeTelegram

ADMINS = ["boss@shop.test", "it@shop.test"]
ADMIN_CHAT = 5001
OTHER_MANAGER_CHAT = 5002
INTERVAL = 600
T0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)


def at(step: int) -> datetime:
    """A moment inside the `step`-th balance slot after T0 (not on its boundary)."""
    return T0 + timedelta(seconds=step * INTERVAL + 17)


def priced(settings: Settings, price_per_sms: str = "1.00") -> Settings:
    """`settings` with every SMS service at `price_per_sms`. The fake `http` gateway has no
    price API: at 1 ₽ per SMS a threshold of 100 SMS falls at 100 ₽."""
    services = [
        service.model_copy(update={"price_per_sms": Decimal(price_per_sms)})
        for service in settings.sms_services
    ]
    return settings.model_copy(update={"sms_services": services})


def scheduled_settings(
    database_url: str,
    telegram: FakeTelegram,
    gateway: FakeHttpGateway,
    smtp: FakeSmtp,
    **notify: Any,
) -> Any:
    return priced(
        live_settings(
            database_url,
            telegram,
            gateway,
            notify={"low_balance_threshold": 100, "admin_emails": ADMINS, **notify},
            smtp=smtp.settings(),
            scheduler={"balance_check_seconds": INTERVAL, "balance_failures_before_alert": 3},
        )
    )


def scheduler_of(service: Service) -> AppScheduler:
    scheduler = service.app[SCHEDULER]
    # The interval triggers stay out of the way: runs happen only when a test says so.
    scheduler.aps.pause()
    return scheduler


async def add_managers(service: Service) -> None:
    """An admin with a linked chat, and an ordinary manager with one (who gets nothing)."""
    async with service.db.transaction() as session:
        await directory.upsert_manager(
            session, {"id": "M-ADMIN", "name": "Администратор", "is_admin": True}
        )
        await directory.upsert_manager(session, {"id": "M-7", "name": "Иван Петров"})
    await service.link_chat(ADMIN_CHAT, manager_id="M-ADMIN")
    await service.link_chat(OTHER_MANAGER_CHAT, manager_id="M-7")


@pytest.fixture
async def smtp() -> AsyncIterator[FakeSmtp]:
    async with FakeSmtp() as server:
        yield server


@pytest.fixture
async def monitored(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway, smtp: FakeSmtp
) -> AsyncIterator[Service]:
    """Live Vestnik with threshold 100, two admin e-mails, a linked admin, SMTP on loopback."""
    running = await start_service(scheduled_settings(database_url, telegram, sms_gateway, smtp))
    try:
        await add_managers(running)
        yield running
    finally:
        await running.client.close()


async def outbox(service: Service) -> list[OutboxEmail]:
    async with service.db.sessions() as session:
        return await alerts.list_emails(session)


async def stored_balances(service: Service) -> list[Decimal | None]:
    async with service.db.sessions() as session:
        return [check.balance for check in await alerts.list_checks(session)]


def alerts_to(telegram: FakeTelegram, chat_id: int) -> list[str]:
    return [message.text or "" for message in telegram.messages_to(chat_id)]


# --------------------------------------------------------------------------- one replica


async def test_a_fall_below_the_threshold_alerts_once_and_again_after_a_top_up_and_a_new_fall(
    monitored: Service, sms_gateway: FakeHttpGateway, smtp: FakeSmtp, telegram: FakeTelegram
) -> None:
    scheduler = scheduler_of(monitored)

    async def check(step: int, balance: str) -> JobRunResult:
        sms_gateway.balance = Decimal(balance)
        run = await scheduler.run_job_now("balance", now=at(step))
        assert run.claimed, run
        assert run.error is None, run
        return run

    await check(0, "500")
    assert smtp.received == []
    assert alerts_to(telegram, ADMIN_CHAT) == []

    run = await check(1, "40")
    assert run.result is not None
    assert run.result["alerts"] == ["low_balance"]
    [mail] = await smtp.wait_for(1)
    assert sorted(mail.rcpt_tos) == sorted(ADMINS), "one message to every admin address"
    assert mail.to == ", ".join(ADMINS)
    assert "ниже порога" in mail.subject
    assert "осталось примерно 40 SMS" in mail.subject
    assert "Осталось примерно 40 SMS (40,00 ₽ по 1,00 ₽)." in mail.body
    assert "Порог уведомления: 100 SMS" in mail.body
    assert "«main»" in mail.body
    assert mail.message["Auto-Submitted"] == "auto-generated"
    [text] = alerts_to(telegram, ADMIN_CHAT)
    assert "Баланс SMS ниже порога" in text
    assert "40,00 ₽" in text
    assert "при пороге 100 SMS" in text
    assert alerts_to(telegram, OTHER_MANAGER_CHAT) == [], "only admins hear about the balance"

    # Still low: nothing more, however many checks.
    await check(2, "40")
    await check(3, "40")
    assert len(smtp.received) == 1
    assert len(alerts_to(telegram, ADMIN_CHAT)) == 1

    # A top-up re-arms the alert without saying anything.
    run = await check(4, "300")
    assert run.result is not None
    assert run.result["rearmed"] == ["low_balance"]
    assert len(smtp.received) == 1
    assert len(alerts_to(telegram, ADMIN_CHAT)) == 1

    # A new fall alerts again, once.
    await check(5, "90")
    await check(6, "90")
    mails = await smtp.wait_for(2)
    assert len(mails) == 2
    assert "90,00 ₽" in mails[1].body
    texts = alerts_to(telegram, ADMIN_CHAT)
    assert len(texts) == 2
    assert "90,00 ₽" in texts[1]

    # Every check is stored with its time, balance and currency.
    async with monitored.db.sessions() as session:
        checks = await alerts.list_checks(session)
    assert [check.balance for check in checks] == [
        Decimal(value) for value in ("500", "40", "40", "40", "300", "90", "90")
    ]
    assert [check.checked_at for check in checks] == [at(step) for step in range(7)]
    assert {check.currency for check in checks} == {"RUB"}
    assert {check.provider for check in checks} == {"main"}
    assert all(check.error is None for check in checks)
    assert all(email.sent_at is not None for email in await outbox(monitored))


async def test_one_run_per_slot_even_when_asked_twice(
    monitored: Service, sms_gateway: FakeHttpGateway, smtp: FakeSmtp
) -> None:
    scheduler = scheduler_of(monitored)
    sms_gateway.balance = Decimal(40)

    first = await scheduler.run_job_now("balance", now=at(0))
    again = await scheduler.run_job_now("balance", now=at(0) + timedelta(seconds=500))
    following = await scheduler.run_job_now("balance", now=at(1))

    assert (first.claimed, again.claimed, following.claimed) == (True, False, True)
    assert first.slot == again.slot == slot_of(at(0), INTERVAL) == T0
    assert following.slot == T0 + timedelta(seconds=INTERVAL)
    assert len(await stored_balances(monitored)) == 2
    assert len(await smtp.wait_for(1)) == 1
    async with monitored.db.sessions() as session:
        run = await session.get(JobRun, ("balance", T0))
    assert run is not None
    assert run.claimed_by == scheduler.replica_id
    assert run.finished_at is not None
    assert run.result is not None
    assert run.result["balance"] == "40.0"


async def test_an_smtp_outage_keeps_the_alert_in_the_outbox_until_the_server_is_back(
    monitored: Service, sms_gateway: FakeHttpGateway, smtp: FakeSmtp, telegram: FakeTelegram
) -> None:
    scheduler = scheduler_of(monitored)
    await smtp.stop()
    sms_gateway.balance = Decimal(40)

    run = await scheduler.run_job_now("balance", now=at(0))
    assert run.result is not None
    assert run.result["alerts"] == ["low_balance"]
    assert run.result["emails"]["failed"] == 1
    [kept] = await outbox(monitored)
    assert kept.sent_at is None
    assert kept.attempts == 1
    assert kept.last_error is not None
    assert "connect" in kept.last_error.lower()
    assert len(alerts_to(telegram, ADMIN_CHAT)) == 1, "Telegram does not wait for SMTP"

    # Still down at the next e-mail run: still kept, one more attempt counted.
    await scheduler.run_job_now("email", now=at(0) + timedelta(seconds=60))
    [kept] = await outbox(monitored)
    assert (kept.sent_at, kept.attempts) == (None, 2)

    await smtp.start()
    run = await scheduler.run_job_now("email", now=at(0) + timedelta(seconds=120))
    assert run.result == {"sent": 1, "failed": 0, "busy": False}
    [mail] = await smtp.wait_for(1)
    assert "40,00 ₽" in mail.body
    [sent] = await outbox(monitored)
    assert sent.sent_at is not None
    assert sent.last_error is None

    # Neither the next balance check nor the next e-mail run sends it twice.
    await scheduler.run_job_now("balance", now=at(1))
    await scheduler.run_job_now("email", now=at(1) + timedelta(seconds=60))
    assert len(smtp.received) == 1
    assert len(alerts_to(telegram, ADMIN_CHAT)) == 1


async def test_a_refused_message_is_sent_by_the_next_balance_check(
    monitored: Service, sms_gateway: FakeHttpGateway, smtp: FakeSmtp
) -> None:
    scheduler = scheduler_of(monitored)
    smtp.fail_next(451, "mailbox busy")
    sms_gateway.balance = Decimal(40)

    await scheduler.run_job_now("balance", now=at(0))
    [kept] = await outbox(monitored)
    assert kept.sent_at is None
    assert kept.last_error is not None
    assert "451" in kept.last_error
    assert smtp.received == []

    await scheduler.run_job_now("balance", now=at(1))
    assert len(await smtp.wait_for(1)) == 1
    [sent] = await outbox(monitored)
    assert sent.sent_at is not None


async def test_an_unreadable_balance_alerts_once_after_n_failures_and_re_arms_on_success(
    monitored: Service, sms_gateway: FakeHttpGateway, smtp: FakeSmtp, telegram: FakeTelegram
) -> None:
    scheduler = scheduler_of(monitored)
    sms_gateway.balance = Decimal(500)
    sms_gateway.fail_next("server_error", times=5)

    for step in range(2):
        run = await scheduler.run_job_now("balance", now=at(step))
        assert run.result is not None
        assert run.result["alerts"] == []
    assert smtp.received == []

    run = await scheduler.run_job_now("balance", now=at(2))
    assert run.result is not None
    assert run.result["alerts"] == ["balance_unreadable"]
    [mail] = await smtp.wait_for(1)
    assert "не удаётся получить баланс" in mail.subject.lower()
    assert "3 раза подряд" in mail.body
    assert "«main»" in mail.body
    [text] = alerts_to(telegram, ADMIN_CHAT)
    assert "3 проверки подряд" in text

    for step in (3, 4):
        await scheduler.run_job_now("balance", now=at(step))
    assert len(smtp.received) == 1
    assert len(alerts_to(telegram, ADMIN_CHAT)) == 1

    # The provider answers again: no message, but the alert is re-armed.
    run = await scheduler.run_job_now("balance", now=at(5))
    assert run.result is not None
    assert run.result["rearmed"] == ["balance_unreadable"]
    assert len(smtp.received) == 1

    # Two failures are not three: the count starts again after a success.
    sms_gateway.fail_next("server_error", times=2)
    for step in (6, 7):
        await scheduler.run_job_now("balance", now=at(step))
    await scheduler.run_job_now("balance", now=at(8))
    sms_gateway.fail_next("server_error", times=3)
    for step in (9, 10, 11):
        await scheduler.run_job_now("balance", now=at(step))
    mails = await smtp.wait_for(2)
    assert len(mails) == 2
    assert len(alerts_to(telegram, ADMIN_CHAT)) == 2

    async with monitored.db.sessions() as session:
        checks = await alerts.list_checks(session)
    assert len(checks) == 12, "every check is stored, readable or not"
    failed = [check for check in checks if check.balance is None]
    assert len(failed) == 10
    assert all(check.error for check in failed)


async def test_threshold_zero_means_no_alert_and_a_new_threshold_applies_at_the_next_check(
    database_url: str,
    telegram: FakeTelegram,
    sms_gateway: FakeHttpGateway,
    smtp: FakeSmtp,
) -> None:
    service = await start_service(
        scheduled_settings(database_url, telegram, sms_gateway, smtp, low_balance_threshold=0)
    )
    try:
        await add_managers(service)
        scheduler = scheduler_of(service)
        sms_gateway.balance = Decimal(5)
        await scheduler.run_job_now("balance", now=at(0))
        await scheduler.run_job_now("balance", now=at(1))
        assert smtp.received == []
        assert alerts_to(telegram, ADMIN_CHAT) == []
        assert len(await stored_balances(service)) == 2, "checks are stored even when off"

        # The seed's choice of 50 through the settings API: the next check alerts.
        status, _ = await service.admin(
            "PUT", "/api/v1/settings", json_body={"low_balance_threshold": 50}
        )
        assert status == 200
        await scheduler.run_job_now("balance", now=at(2))
        [mail] = await smtp.wait_for(1)
        assert "Порог уведомления: 50 SMS" in mail.body
        assert len(alerts_to(telegram, ADMIN_CHAT)) == 1
    finally:
        await service.client.close()


async def test_without_a_bot_the_e_mail_still_goes(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway, smtp: FakeSmtp
) -> None:
    settings = scheduled_settings(database_url, telegram, sms_gateway, smtp)
    settings = settings.model_copy(
        update={"telegram": settings.telegram.model_copy(update={"token": None})}
    )
    service = await start_service(settings)
    try:
        await add_managers(service)
        sms_gateway.balance = Decimal(10)
        run = await scheduler_of(service).run_job_now("balance", now=at(0))
        assert run.result is not None
        assert run.result["telegram_sent"] == 0
        assert len(await smtp.wait_for(1)) == 1
        assert telegram.sent == []
    finally:
        await service.client.close()


# --------------------------------------------------------------------------- report


async def test_the_cli_and_the_admin_api_show_the_same_figure_and_threshold_state(
    monitored: Service, sms_gateway: FakeHttpGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    sms_gateway.balance = Decimal("84.75")
    # The threshold changed through the settings API (stored), not in the file.
    status, _ = await monitored.admin(
        "PUT", "/api/v1/settings", json_body={"low_balance_threshold": 200}
    )
    assert status == 200

    async def both() -> tuple[dict[str, Any], str]:
        status, body = await monitored.admin("GET", "/api/v1/balance")
        assert status == 200, body
        capsys.readouterr()
        await asyncio.to_thread(print_balance, monitored.settings, None)
        return body, capsys.readouterr().out.strip()

    body, line = await both()
    assert Decimal(body["balance"]) == Decimal("84.75")
    assert (body["threshold"], body["state"], body["below_threshold"]) == (200, "below", True)
    assert (body["sms_left"], body["price_per_sms"]) == (84, "1.00")
    assert body["alert_active"] is False
    assert line == (
        "main (http): balance 84.75 RUB = 84 SMS at 1.00 (configured price); "
        "BELOW threshold 200 SMS; alert armed"
    )

    await scheduler_of(monitored).run_job_now("balance", now=at(0))
    body, line = await both()
    assert body["alert_active"] is True
    assert line.endswith("BELOW threshold 200 SMS; alert raised")

    sms_gateway.balance = Decimal("250.5")
    body, line = await both()
    assert (Decimal(body["balance"]), body["state"]) == (Decimal("250.5"), "ok")
    assert line.startswith("main (http): balance 250.5 RUB = 250 SMS at 1.00 (configured price)")
    assert line.endswith("; at or above threshold 200 SMS; alert raised")

    status, _ = await monitored.admin(
        "PUT", "/api/v1/settings", json_body={"low_balance_threshold": 0}
    )
    assert status == 200
    body, line = await both()
    assert body["state"] == "off"
    assert line.endswith("; low-balance alerts off (threshold 0)")


# --------------------------------------------------------------------------- replicas


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_three_replicas_change_nothing_in_the_counts(
    database_url: str,
    telegram: FakeTelegram,
    sms_gateway: FakeHttpGateway,
    smtp: FakeSmtp,
) -> None:
    settings = scheduled_settings(database_url, telegram, sms_gateway, smtp)
    replicas = [await start_service(settings) for _ in range(3)]
    try:
        await add_managers(replicas[0])
        schedulers = [scheduler_of(replica) for replica in replicas]
        assert len({scheduler.replica_id for scheduler in schedulers}) == 3

        async def slot(step: int, balance: str) -> list[JobRunResult]:
            sms_gateway.balance = Decimal(balance)
            runs = await asyncio.gather(
                *(scheduler.run_job_now("balance", now=at(step)) for scheduler in schedulers)
            )
            assert sum(run.claimed for run in runs) == 1, runs
            return runs

        for step, balance in enumerate(["500", "40", "40", "300", "90", "90"]):
            await slot(step, balance)

        mails = await smtp.wait_for(2)
        assert len(mails) == 2
        assert len(alerts_to(telegram, ADMIN_CHAT)) == 2
        assert await stored_balances(replicas[1]) == [
            Decimal(value) for value in ("500", "40", "40", "300", "90", "90")
        ]
        assert sms_gateway.paths["/sms/balance"] == 6, "one provider request per slot"

        # The e-mail job of all three replicas in one slot: nothing is sent twice.
        runs = await asyncio.gather(
            *(scheduler.run_job_now("email", now=at(6)) for scheduler in schedulers)
        )
        assert sum(run.claimed for run in runs) == 1
        assert len(smtp.received) == 2

        async with replicas[2].db.sessions() as session:
            claims = (
                await session.execute(select(JobRun).where(JobRun.job == "balance"))
            ).scalars()
            slots = sorted(run.slot for run in claims)
        assert slots == [T0 + timedelta(seconds=step * INTERVAL) for step in range(6)]
    finally:
        for replica in replicas:
            await replica.client.close()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_two_replicas_flushing_the_outbox_at_once_send_each_e_mail_once(
    database_url: str,
    telegram: FakeTelegram,
    sms_gateway: FakeHttpGateway,
    smtp: FakeSmtp,
) -> None:
    """The outbox is also flushed by the balance job, outside the e-mail job's slot: the
    advisory lock keeps two flushes from handing the same e-mail to the server."""
    settings = scheduled_settings(database_url, telegram, sms_gateway, smtp)
    replicas = [await start_service(settings) for _ in range(2)]
    try:
        await smtp.stop()
        sms_gateway.balance = Decimal(40)
        await scheduler_of(replicas[0]).run_job_now("balance", now=at(0))
        scheduler_of(replicas[1])
        await smtp.start()
        mailers = [replica.app[SCHEDULER].mailer for replica in replicas]
        flushes: list[Callable[[datetime], Awaitable[Any]]] = [
            mailer.flush for mailer in mailers if mailer is not None
        ]
        tallies = await asyncio.gather(*(flush(at(1)) for flush in flushes))
        assert sum(tally.sent for tally in tallies) == 1
        assert len(await smtp.wait_for(1)) == 1
    finally:
        for replica in replicas:
            await replica.client.close()


async def test_vestnik_balance_without_a_database_uses_the_file_and_creates_nothing(
    tmp_path: Path,
    telegram: FakeTelegram,
    sms_gateway: FakeHttpGateway,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "never-created.db"
    settings = priced(
        live_settings(
            f"sqlite+aiosqlite:///{missing}",
            telegram,
            sms_gateway,
            notify={"low_balance_threshold": 50},
        )
    )
    sms_gateway.balance = Decimal("49.99")
    await asyncio.to_thread(print_balance, settings, None)
    line = capsys.readouterr().out.strip()
    assert line == (
        "main (http): balance 49.99 RUB = 49 SMS at 1.00 (configured price); "
        "BELOW threshold 50 SMS"
    )
    assert not missing.exists()
