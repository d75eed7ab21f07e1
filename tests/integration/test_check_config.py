"""`vestnik check-config` against real servers on loopback: a migrated SQLite database, the
fake Telegram Bot API, the fake `http` SMS gateway and an aiosmtpd SMTP server."""

from __future__ import annotations

import asyncio
import io
import logging
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from bot.cli.check_config import CheckResult, format_results, print_checks, run_checks
from bot.settings import ConfigError, Settings
from storage import migrate
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram

SMTP_USER = "vestnik@example.com"
SMTP_PASSWORD = "smtp-secret-password"


class _Sink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = (
        isinstance(data, LoginPassword)
        and data.login.decode() == SMTP_USER
        and data.password.decode() == SMTP_PASSWORD
    )
    return AuthResult(success=ok, handled=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_port() -> Iterator[int]:
    """A real SMTP server (aiosmtpd, in its own thread) with AUTH PLAIN/LOGIN over plain TCP."""
    controller = Controller(
        _Sink(),
        hostname="127.0.0.1",
        port=_free_port(),
        authenticator=_authenticate,
        auth_require_tls=False,
    )
    mail_log = logging.getLogger("mail.log")  # aiosmtpd logs every session at INFO
    level = mail_log.level
    mail_log.setLevel(logging.ERROR)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()
        mail_log.setLevel(level)


@pytest.fixture
def database_file(sqlite_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "vestnik.db"
    shutil.copyfile(sqlite_template, path)
    return path


def _settings(servers: dict[str, Any], **changes: dict[str, Any] | list[Any]) -> Settings:
    """Settings pointing at `servers` (the `everything` fixture), with `changes` merged."""
    database_file: Path = servers["database_file"]
    telegram: FakeTelegram = servers["telegram"]
    gateway: FakeHttpGateway = servers["gateway"]
    smtp_port: int = servers["smtp_port"]
    sections: dict[str, Any] = {
        "database": {"url": f"sqlite+aiosqlite:///{database_file}"},
        "smtp": {
            "host": "127.0.0.1",
            "port": smtp_port,
            "username": SMTP_USER,
            "password": SMTP_PASSWORD,
        },
        "telegram": {"token": telegram.token, "api_base": telegram.base_url},
        "sms_services": [
            {"name": "main", "kind": "http", "base_url": gateway.base_url, "token": gateway.token}
        ],
    }
    for key, value in changes.items():
        if isinstance(value, dict):
            sections[key] = {**sections.get(key, {}), **value}
        else:
            sections[key] = value
    return Settings.load(**sections)


async def _print(settings: Settings, config_file: Path | None = None) -> tuple[int, str]:
    """print_checks runs its own event loop, so it goes to a thread while this loop keeps
    serving the fakes."""
    out = io.StringIO()
    code = await asyncio.to_thread(print_checks, settings, config_file, stream=out)
    return code, out.getvalue()


def _by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {result.name: result for result in results}


@pytest.fixture
def everything(
    database_file: Path, telegram: FakeTelegram, sms_gateway: FakeHttpGateway, smtp_port: int
) -> dict[str, Any]:
    """Every server a check talks to, running."""
    return {
        "database_file": database_file,
        "telegram": telegram,
        "gateway": sms_gateway,
        "smtp_port": smtp_port,
    }


async def test_all_checks_pass_and_print_one_line_each(
    everything: dict[str, Any], tmp_path: Path
) -> None:
    config = tmp_path / "vestnik.toml"
    config.write_text("")
    settings = _settings(everything)
    code, output = await _print(settings, config)
    lines = output.splitlines()
    assert code == 0, output
    assert [line.split()[:2] for line in lines] == [
        ["ok", "config"],
        ["ok", "database"],
        ["ok", "smtp"],
        ["ok", "telegram"],
        ["ok", "sms:main"],
    ]
    assert lines[0].endswith(f"{config} (notify.mode = test)")
    assert f"(schema {migrate.head_revision()}, up to date)" in lines[1]
    assert lines[2].endswith(f"127.0.0.1:{everything['smtp_port']} (login as {SMTP_USER})")
    assert "@vestnik_test_bot via http://127.0.0.1:" in lines[3]
    # No price API on the http kind and no price_per_sms: the SMS left cannot be counted.
    assert lines[4].endswith(
        "http: balance 1000.0 RUB (SMS left unknown: no price API and no price_per_sms)"
    )
    assert lines[1].startswith("ok   database  sqlite+aiosqlite:///")
    for secret in (SMTP_PASSWORD, everything["telegram"].token, everything["gateway"].token):
        assert secret not in output


async def test_skipped_checks_say_why(database_file: Path) -> None:
    settings = Settings.load(database={"url": f"sqlite+aiosqlite:///{database_file}"})
    results = _by_name(await run_checks(settings, None))
    assert results["config"].detail.startswith("no file: defaults and VESTNIK_*")
    assert results["database"].status == "ok"
    assert (results["smtp"].status, results["smtp"].detail) == ("skip", "no server (smtp.host)")
    assert (results["telegram"].status, results["telegram"].detail) == (
        "skip",
        "no token (telegram.token)",
    )
    assert (results["sms"].status, results["sms"].detail) == (
        "skip",
        "no SMS service ([[sms_services]])",
    )
    code, output = await _print(settings)
    assert code == 0
    assert "skip telegram  no token (telegram.token)" in output


async def test_smtp_on_a_wrong_port_fails(everything: dict[str, Any]) -> None:
    port = _free_port()
    settings = _settings(everything, smtp={"port": port})
    code, output = await _print(settings)
    assert code == 1
    [line] = [line for line in output.splitlines() if line.startswith("FAIL")]
    assert line.startswith(f"FAIL smtp      cannot connect to 127.0.0.1:{port}: ")


async def test_smtp_with_a_wrong_password_fails_without_printing_it(
    everything: dict[str, Any],
) -> None:
    settings = _settings(everything, smtp={"password": "wrong-password-123"})
    code, output = await _print(settings)
    assert code == 1
    assert f"FAIL smtp      127.0.0.1:{everything['smtp_port']}: login as {SMTP_USER} refused" in (
        output
    )
    assert "wrong-password-123" not in output


async def test_smtp_starttls_the_server_does_not_offer_fails(everything: dict[str, Any]) -> None:
    settings = _settings(everything, smtp={"starttls": True})
    results = _by_name(await run_checks(settings, None))
    assert results["smtp"].status == "fail"
    assert "STARTTLS failed" in results["smtp"].detail


async def test_telegram_with_a_wrong_token_fails(everything: dict[str, Any]) -> None:
    telegram: FakeTelegram = everything["telegram"]
    wrong = "987654321:AAWrongWrongWrongWrongWrongWrongWrong0"
    settings = _settings(everything, telegram={"token": wrong})
    code, output = await _print(settings)
    assert code == 1
    assert f"FAIL telegram  {telegram.base_url} refused the token (401 Unauthorized)" in output
    assert wrong not in output
    assert wrong.split(":")[1] not in output


async def test_telegram_webhook_mode_reports_the_webhook(everything: dict[str, Any]) -> None:
    # Webhook mode without a public URL is refused when the settings load, one clear line.
    with pytest.raises(ConfigError, match=r"needs http\.public_url"):
        _settings(everything, telegram={"mode": "webhook"})

    settings = _settings(
        everything,
        telegram={"mode": "webhook"},
        http={"public_url": "https://v.example.com"},
        admin={"token": "check-config-admin-token"},  # a public URL needs one
    )
    results = _by_name(await run_checks(settings, None))
    assert results["telegram"].status == "ok"
    assert results["telegram"].detail.endswith(
        "webhook mode; no webhook set yet (`vestnik serve` sets "
        "https://v.example.com/telegram/webhook), 0 pending"
    )


async def test_sms_gateway_refusing_the_credentials_fails(everything: dict[str, Any]) -> None:
    gateway: FakeHttpGateway = everything["gateway"]
    service = {"name": "main", "kind": "http", "base_url": gateway.base_url, "token": "nope-xyz"}
    settings = _settings(everything, sms_services=[service])
    code, output = await _print(settings)
    assert code == 1
    [line] = [line for line in output.splitlines() if line.startswith("FAIL")]
    assert line.startswith("FAIL sms:main  http: http balance: HTTP 401")
    assert "(auth)" in line
    assert "nope-xyz" not in output


async def test_database_problems_are_reported(everything: dict[str, Any], tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    settings = _settings(everything, database={"url": f"sqlite+aiosqlite:///{missing}"})
    results = _by_name(await run_checks(settings, None))
    assert results["database"].status == "warn"
    assert "does not exist yet (`vestnik serve` creates it" in results["database"].detail
    assert not missing.exists(), "the check must not create the database file"

    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    settings = _settings(everything, database={"url": f"sqlite+aiosqlite:///{empty}"})
    results = _by_name(await run_checks(settings, None))
    assert results["database"].status == "fail"
    assert "answers but has no schema (run `vestnik migrate`)" in results["database"].detail

    url = f"postgresql+asyncpg://vestnik:db-secret-pw@127.0.0.1:{_free_port()}/vestnik"
    settings = _settings(everything, database={"url": url})
    code, output = await _print(settings)
    assert code == 1
    assert "FAIL database  cannot reach postgresql+asyncpg://vestnik:***@127.0.0.1:" in output
    assert "db-secret-pw" not in output


async def test_database_behind_this_version_fails(
    everything: dict[str, Any], tmp_path: Path
) -> None:
    from storage.database import create_database

    path = tmp_path / "old.db"
    db = create_database(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate.upgrade(db, "0003")
    finally:
        await db.dispose()
    settings = _settings(everything, database={"url": f"sqlite+aiosqlite:///{path}"})
    results = _by_name(await run_checks(settings, None))
    assert results["database"].status == "fail"
    assert results["database"].detail.endswith(
        f"(schema 0003, this version needs {migrate.head_revision()}: run `vestnik migrate`)"
    )


async def test_a_server_that_never_answers_fails_within_the_timeout(
    everything: dict[str, Any],
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts the connection, never greets, until the client leaves
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = _settings(everything, smtp={"port": port})
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        results = _by_name(await run_checks(settings, None, seconds=0.3))
    finally:
        server.close()
    assert loop.time() - started < 3
    assert (results["smtp"].status, results["smtp"].detail) == ("fail", "no answer within 0.3 s")
    assert results["database"].status == "ok", results["database"]


def test_lines_are_aligned() -> None:
    lines = format_results(
        [
            CheckResult("config", "ok", "x"),
            CheckResult("database", "fail", "y"),
            CheckResult("smtp", "skip", "z"),
        ]
    )
    assert lines == ["ok   config    x", "FAIL database  y", "skip smtp      z"]


async def test_the_balance_is_counted_in_sms_against_the_threshold(
    everything: dict[str, Any],
) -> None:
    gateway: FakeHttpGateway = everything["gateway"]
    service = {
        "name": "main",
        "kind": "http",
        "base_url": gateway.base_url,
        "token": gateway.token,
        "price_per_sms": "2.50",
    }
    results = _by_name(await run_checks(_settings(everything, sms_services=[service]), None))
    assert results["sms:main"].detail == "http: balance 1000.0 RUB = 400 SMS"

    below = _settings(everything, sms_services=[service], notify={"low_balance_threshold": 500})
    results = _by_name(await run_checks(below, None))
    assert results["sms:main"].status == "ok"
    assert results["sms:main"].detail == (
        "http: balance 1000.0 RUB = 400 SMS, below notify.low_balance_threshold = 500 SMS"
    )
