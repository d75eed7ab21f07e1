"""Admin e-mail over every transport the [smtp] section offers, against a real SMTP server
on loopback: plain, plain with AUTH, STARTTLS and implicit TLS (certificates made in the
test by trustme, trusted through SSL_CERT_FILE only)."""

from __future__ import annotations

import email
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.policy import default as default_policy
from pathlib import Path

import pytest

from bot.scheduler import slot_of
from dispatch.ops.email import build_message
from handlers.common.keys import SCHEDULER
from storage.ops import alerts
from tests.conftest import Service, live_settings, start_service
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.smtp import FakeSmtp, Mode, TlsFiles, make_tls
from tests.fakes.telegram import FakeTelegram
from tests.integration.test_scheduler import priced

ADMINS = ["boss@shop.test"]
NOW = datetime(2030, 3, 1, 9, 0, 17, tzinfo=UTC)

# The transport is what these tests are about; one database backend is enough.
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("smtp-tls"))


async def vestnik_with(
    database_url: str,
    telegram: FakeTelegram,
    gateway: FakeHttpGateway,
    smtp: FakeSmtp,
    **smtp_extra: object,
) -> Service:
    settings = live_settings(
        database_url,
        telegram,
        gateway,
        notify={"low_balance_threshold": 100, "admin_emails": ADMINS},
        smtp=smtp.settings(**smtp_extra),
    )
    return await start_service(priced(settings))


async def raise_low_balance_alert(service: Service, gateway: FakeHttpGateway) -> None:
    scheduler = service.app[SCHEDULER]
    scheduler.aps.pause()
    gateway.balance = Decimal(12)
    run = await scheduler.run_job_now("balance", now=NOW)
    assert run.result is not None
    assert run.result["alerts"] == ["low_balance"]


async def outbox_errors(service: Service) -> list[str | None]:
    async with service.db.sessions() as session:
        return [row.last_error for row in await alerts.list_emails(session) if row.sent_at is None]


@pytest.fixture
async def stopper() -> AsyncIterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        await service.client.close()


@SQLITE_ONLY
@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_the_alert_goes_over_tls_with_auth_once(
    mode: Mode,
    tls_files: TlsFiles,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    telegram: FakeTelegram,
    sms_gateway: FakeHttpGateway,
    stopper: list[Service],
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files.ca_file))
    async with FakeSmtp(mode=mode, tls=tls_files, credentials=("vestnik", "s3cret")) as smtp:
        service = await vestnik_with(database_url, telegram, sms_gateway, smtp)
        stopper.append(service)
        await raise_low_balance_alert(service, sms_gateway)
        [mail] = await smtp.wait_for(1)
        assert mail.tls, f"{mode}: the message travelled unencrypted"
        assert mail.auth_user == "vestnik"
        assert mail.rcpt_tos == ADMINS
        assert "12,00 ₽" in mail.body
        assert await outbox_errors(service) == []
        # The next check (still low) sends nothing more.
        await service.app[SCHEDULER].run_job_now("balance", now=NOW + timedelta(minutes=10))
        assert len(smtp.received) == 1


@SQLITE_ONLY
async def test_a_server_certificate_nobody_trusts_keeps_the_e_mail_in_the_outbox(
    tls_files: TlsFiles,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    telegram: FakeTelegram,
    sms_gateway: FakeHttpGateway,
    stopper: list[Service],
) -> None:
    stranger = make_tls(tmp_path)  # another CA: the server's certificate is not from it
    monkeypatch.setenv("SSL_CERT_FILE", str(stranger.ca_file))
    async with FakeSmtp(mode="tls", tls=tls_files) as smtp:
        service = await vestnik_with(database_url, telegram, sms_gateway, smtp)
        stopper.append(service)
        await raise_low_balance_alert(service, sms_gateway)
        [error] = await outbox_errors(service)
        assert error is not None
        assert "certificate" in error.lower()
        assert smtp.received == []


@SQLITE_ONLY
@pytest.mark.parametrize("password", ["s3cret", "wrong"])
async def test_plain_smtp_with_auth_delivers_and_a_wrong_password_keeps_the_e_mail(
    password: str,
    database_url: str,
    telegram: FakeTelegram,
    sms_gateway: FakeHttpGateway,
    stopper: list[Service],
) -> None:
    async with FakeSmtp(credentials=("vestnik", "s3cret")) as smtp:
        service = await vestnik_with(database_url, telegram, sms_gateway, smtp, password=password)
        stopper.append(service)
        await raise_low_balance_alert(service, sms_gateway)
        if password == "s3cret":
            [mail] = await smtp.wait_for(1)
            assert (mail.tls, mail.auth_user) == (False, "vestnik")
            assert await outbox_errors(service) == []
            return
        [error] = await outbox_errors(service)
        assert error is not None
        assert "535" in error
        assert smtp.auth_failures >= 1
        assert smtp.received == []


@SQLITE_ONLY
async def test_plain_smtp_without_auth_delivers(
    database_url: str,
    telegram: FakeTelegram,
    sms_gateway: FakeHttpGateway,
    stopper: list[Service],
) -> None:
    async with FakeSmtp() as smtp:
        service = await vestnik_with(database_url, telegram, sms_gateway, smtp)
        stopper.append(service)
        await raise_low_balance_alert(service, sms_gateway)
        [mail] = await smtp.wait_for(1)
        assert (mail.tls, mail.auth_user) == (False, None)
        assert mail.mail_from == "vestnik@shop.test"


def test_a_long_russian_subject_survives_folding() -> None:
    subject = "Vestnik: не удаётся получить баланс SMS-сервиса «очень-длинное-имя-сервиса-смс»"
    message = build_message(
        sender="vestnik@shop.test",
        recipients=["a@shop.test", "b@shop.test"],
        subject=subject,
        body="Баланс: 40,00 ₽",
        now=NOW,
    )
    raw = message.as_bytes()
    assert max(len(line) for line in raw.splitlines()) <= 78
    parsed = email.message_from_bytes(raw, policy=default_policy)
    assert parsed["Subject"] == subject
    assert parsed["To"] == "a@shop.test, b@shop.test"
    assert parsed.get_content().strip() == "Баланс: 40,00 ₽"


def test_slots_are_floor_of_now_over_the_interval() -> None:
    assert slot_of(NOW, 600) == datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
    assert slot_of(datetime(2030, 3, 1, 9, 9, 59, 999999, tzinfo=UTC), 600) == datetime(
        2030, 3, 1, 9, 0, tzinfo=UTC
    )
    assert slot_of(datetime(2030, 3, 1, 9, 10, tzinfo=UTC), 600) == datetime(
        2030, 3, 1, 9, 10, tzinfo=UTC
    )
    assert slot_of(NOW, 3600) == datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
