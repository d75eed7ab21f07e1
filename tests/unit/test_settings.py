"""Configuration: TOML file, VESTNIK_* overrides, and readable errors."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bot.settings import ConfigError, Settings

EXAMPLE = """
[notify]
mode = "live"
service = "telegram"
reserve = "sms"
sms_service = "main"
low_balance_threshold = 50
admin_emails = ["admin@example.com"]
chat_enabled = false
auto_reply = "Чат отключён. Позвоните менеджеру: +7 495 000-00-00"

[webhook]
secret = "s3cret-erp-hmac-0123456789"

[admin]
token = "admin-token-0123456789"

[[sms_services]]
name = "main"
kind = "smsc"
base_url = "http://127.0.0.1:9999/sys/"
login = "shop"
password = "pw"
sender = "PARTS"

[smtp]
host = "127.0.0.1"
port = 2525
from = "vestnik@example.com"

[scheduler]
balance_check_seconds = 600

[delivery]
max_attempts = 8

[event_types."client_order.ready"]
send_to_manager = true
confirm_before_send = false
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vestnik.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_run_embedded_sqlite_in_test_mode() -> None:
    settings = Settings.load()
    assert settings.database.url == "sqlite+aiosqlite:///./vestnik.db"
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 8080)
    assert settings.notify.mode == "test"
    assert settings.telegram.token is None
    assert settings.is_sqlite


def test_contract_example_file_loads(tmp_path: Path) -> None:
    settings = Settings.load(write(tmp_path, EXAMPLE))
    assert settings.notify.mode == "live"
    assert settings.notify.low_balance_threshold == Decimal(50)
    assert settings.sms_services[0].kind == "smsc"
    assert settings.smtp.from_ == "vestnik@example.com"
    assert settings.event_types["client_order.ready"].send_to_manager is True


def test_vestnik_toml_in_the_working_directory_is_found(tmp_path: Path) -> None:
    write(tmp_path, "[http]\nport = 9090\n")
    assert Settings.load().http.port == 9090


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VESTNIK_NOTIFY__MODE", "off")
    monkeypatch.setenv("VESTNIK_HTTP__PORT", "9191")
    monkeypatch.setenv("VESTNIK_DATABASE__URL", "postgresql+asyncpg://u@h/db")
    settings = Settings.load(write(tmp_path, EXAMPLE))
    assert settings.notify.mode == "off"
    assert settings.http.port == 9191
    assert settings.database.url == "postgresql+asyncpg://u@h/db"
    assert settings.sms_services[0].name == "main"


def test_live_mode_without_webhook_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VESTNIK_NOTIFY__MODE", "live")
    with pytest.raises(ConfigError, match=r"webhook\.secret"):
        Settings.load()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[notify]\nmode = 'loud'\n", "notify.mode"),
        ("[http]\nport = 'eighty'\n", "http.port"),
        ("[notify]\nsms_service = 'nope'\n", "nope"),
        ("[event_types.'order.unknown']\nsend_to_client = true\n", "order.unknown"),
        ("[notify]\nadmin_emails = ['not-an-address']\n", "not-an-address"),
        ("[database]\nurl = 1\n[database]\n", "not valid TOML"),
        ("[nonsense]\nx = 1\n", "nonsense"),
        ("[telegram]\ntoken = '1:x'\nmode = 'webhook'\n", "http.public_url"),
        ("[telegram]\nwebhook_secret = 'has spaces'\n", "webhook_secret"),
        ("[telegram]\nwebhook_secret = 'long/enough:but+not-telegram'\n", "A-Z, a-z, 0-9, _"),
        ("[erp]\ncallback_url = 'https://erp.example/press'\n", "erp.callback_secret"),
        ("[erp]\ncallback_url = 'ftp://erp.example/press'\n", "http:// or https://"),
        ("[erp]\ncallback_secret = 'short'\n", "at least 16 characters"),
    ],
)
def test_bad_config_is_one_readable_line(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load(write(tmp_path, text))
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(tmp_path / "missing.toml")
