"""`vestnik check-config` refuses setups that cannot work as meant: live mode with no route
that can deliver, and secrets still holding the placeholders of `.env.example` or the docs.
Driven through the real command, against a migrated SQLite file and loopback fakes."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.main import main
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram

REPO = Path(__file__).resolve().parents[2]
VESTNIK = str(Path(sys.executable).with_name("vestnik"))
# Real-looking secrets (what `openssl rand -hex 16` gives), so only the rule under test fails.
LIVE_SECRETS = {
    "VESTNIK_WEBHOOK__SECRET": "5f0c9e2a7d4b81c3e6a9f2b04d7c1e58",
    "VESTNIK_ADMIN__TOKEN": "c41d8e7a2f9b06e3d5a8c1f74b2e9d06",
}
CLOSED_PORT_URL = "http://127.0.0.1:9/"  # refused at once: the provider checks fail fast


@pytest.fixture(autouse=True)
def _migrated_database(sqlite_template: Path, tmp_path: Path) -> None:
    """A migrated ./vestnik.db where the command runs, so the database line is ok."""
    shutil.copyfile(sqlite_template, tmp_path / "vestnik.db")


def check_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], **env: str
) -> tuple[int, list[str]]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(["check-config"])
    return code, capsys.readouterr().out.splitlines()


async def check_config_in_thread(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], **env: str
) -> tuple[int, list[str]]:
    """For checks that talk to the fakes: the command runs its own event loop, so it goes to
    a thread while this loop serves them."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, lambda: check_config(monkeypatch, capsys, **env))


def starting(lines: list[str], prefix: str) -> list[str]:
    return [line for line in lines if line.startswith(prefix)]


def write_sms_services(tmp_path: Path, *entries: str) -> None:
    (tmp_path / "vestnik.toml").write_text(
        "".join(f"[[sms_services]]\n{entry}\n" for entry in entries), encoding="utf-8"
    )


def gateway_entry(gateway: FakeHttpGateway) -> str:
    return f'name = "main"\nkind = "http"\nbase_url = "{gateway.base_url}"\n' + (
        f'token = "{gateway.token}"\n'
    )


# --------------------------------------------------------------- live with no usable route


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        (
            {"VESTNIK_NOTIFY__SERVICE": "sms"},
            ["notify.service = sms, but no [[sms_services]] entry", "nothing can be delivered"],
        ),
        (
            {"VESTNIK_NOTIFY__RESERVE": "none"},
            ["no bot (telegram.token, VESTNIK_TELEGRAM__TOKEN)", "notify.reserve = none"],
        ),
        (
            {},
            ["no bot (telegram.token", "no reserve SMS (no [[sms_services]] entry)"],
        ),
    ],
    ids=["sms-without-a-service", "no-bot-reserve-off", "no-bot-no-sms-service"],
)
def test_live_mode_that_can_deliver_nothing_fails(
    env: dict[str, str],
    fragments: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, lines = check_config(
        monkeypatch, capsys, VESTNIK_NOTIFY__MODE="live", **LIVE_SECRETS, **env
    )
    assert code == 1
    [failed] = starting(lines, "FAIL")
    assert failed.startswith("FAIL delivery")
    for fragment in fragments:
        assert fragment in failed
    assert "[[sms_services]]" in failed  # the fix


def test_test_mode_has_no_delivery_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = check_config(monkeypatch, capsys, VESTNIK_NOTIFY__SERVICE="sms")
    assert code == 0, lines
    assert not [line for line in lines if "delivery" in line]


async def test_live_telegram_without_a_reserve_sms_warns_but_passes(
    telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = await check_config_in_thread(
        monkeypatch,
        capsys,
        VESTNIK_NOTIFY__MODE="live",
        VESTNIK_TELEGRAM__TOKEN=telegram.token,
        VESTNIK_TELEGRAM__API_BASE=telegram.base_url,
        **LIVE_SECRETS,
    )
    assert code == 0, lines
    [warned] = starting(lines, "warn")
    assert warned.startswith("warn delivery")
    assert "who have not subscribed to the bot get nothing" in warned
    assert "notify.reserve = sms" in warned
    assert not starting(lines, "FAIL")


@pytest.mark.parametrize(
    ("service", "line"),
    [
        ("telegram", "ok   delivery  live: Telegram, reserve SMS via main (http)"),
        ("sms", "ok   delivery  live: SMS via main (http)"),
    ],
)
async def test_live_with_a_usable_route_passes(
    service: str,
    line: str,
    telegram: FakeTelegram,
    sms_gateway: FakeHttpGateway,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_sms_services(tmp_path, gateway_entry(sms_gateway))
    code, lines = await check_config_in_thread(
        monkeypatch,
        capsys,
        VESTNIK_NOTIFY__MODE="live",
        VESTNIK_NOTIFY__SERVICE=service,
        VESTNIK_TELEGRAM__TOKEN=telegram.token,
        VESTNIK_TELEGRAM__API_BASE=telegram.base_url,
        **LIVE_SECRETS,
    )
    assert code == 0, lines
    assert line in lines
    assert not starting(lines, "FAIL") and not starting(lines, "warn")


# ------------------------------------------------------------------- placeholder secrets


def env_example_variables() -> dict[str, str]:
    """The VESTNIK_* variables `.env.example` sets: KEY=VALUE lines, no comments or blanks."""
    found: dict[str, str] = {}
    for line in (REPO / ".env.example").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        if name.startswith("VESTNIK_") and value.strip():
            found[name.strip()] = value.strip()
    return found


def test_env_example_placeholders_fail_one_line_each(tmp_path: Path) -> None:
    variables = env_example_variables()
    placeholders = {
        name for name, value in variables.items() if re.match(r"change-?me", value, re.I)
    }
    assert placeholders, ".env.example has no change-me placeholder left to refuse"
    env = {name: value for name, value in os.environ.items() if not name.startswith("VESTNIK_")}
    done = subprocess.run(
        [VESTNIK, "check-config"],
        cwd=tmp_path,
        env={**env, **variables},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr
    secret_lines = starting(done.stdout.splitlines(), "FAIL secret")
    assert len(secret_lines) == len(placeholders), done.stdout
    for name in placeholders:
        key = name.removeprefix("VESTNIK_").lower().replace("__", ".")
        [line] = [line for line in secret_lines if f"{key} ({name})" in line]
        assert "looks like a placeholder" in line
        assert "openssl rand -hex 32" in line
        assert variables[name] not in done.stdout


def test_placeholder_sms_credentials_fail_one_line_each_and_real_ones_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = f'base_url = "{CLOSED_PORT_URL}"\n'
    write_sms_services(
        tmp_path,
        f'name = "smsc"\nkind = "smsc"\n{base}login = "shop"\npassword = "<password>"\n',
        f'name = "aero"\nkind = "smsaero"\n{base}email = "a@shop.ru"\napi_key = "YOUR_API_KEY"\n',
        f'name = "ru"\nkind = "smsru"\n{base}api_key = "XXXXXXXXXXXXXXXX"\ntoken = "secret"\n',
        f'name = "gw"\nkind = "http"\n{base}token = "..."\n',
        f'name = "real"\nkind = "http"\n{base}token = "9f86d081884c7d659a2feaa0c55ad015"\n',
    )
    code, lines = check_config(monkeypatch, capsys)
    assert code == 1
    secret_lines = starting(lines, "FAIL secret")
    named = [re.search(r"\[\[sms_services\]\] '(\w+)' (\w+)", line) for line in secret_lines]
    assert sorted(match.groups() for match in named if match) == [
        ("aero", "api_key"),
        ("gw", "token"),
        ("ru", "api_key"),
        ("ru", "token"),
        ("smsc", "password"),
    ]
    assert len(secret_lines) == 5
    assert any('(it is the word "secret")' in line for line in secret_lines)
    assert any("<…> placeholder" in line for line in secret_lines)


def test_a_placeholder_database_password_fails_without_being_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql+asyncpg://vestnik:change-me-postgres-password@127.0.0.1:1/vestnik"
    code, lines = check_config(monkeypatch, capsys, VESTNIK_DATABASE__URL=url)
    assert code == 1
    [secret] = starting(lines, "FAIL secret")
    assert "the password in database.url (VESTNIK_DATABASE__URL) looks like a placeholder" in (
        secret
    )
    assert not any("change-me-postgres-password" in line for line in lines)


def test_a_too_short_secret_is_refused_in_one_line_before_any_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VESTNIK_ADMIN__TOKEN", "short-token")
    assert main(["check-config"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert "admin.token" in line and "16" in line
