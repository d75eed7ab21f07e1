"""`vestnik journal` as an operator reads it: every kind of recipient labelled, and no
database file conjured up in a folder that has none."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.main import main
from tests.conftest import Service
from tests.events import make_event
from tests.fakes.sms_http import FakeHttpGateway

VESTNIK = str(Path(sys.executable).with_name("vestnik"))


def clean_env(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("VESTNIK_")}
    return {**env, **extra}


async def test_every_recipient_kind_has_its_label_and_a_masked_phone(
    sms_service: Service,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, body = await sms_service.admin(
        "PUT", "/api/v1/event-types/client_order.ready", json_body={"send_to_manager": True}
    )
    assert status == 200, body
    # An admin tries the SMS service: the row has neither a client nor a manager.
    status, body = await sms_service.admin(
        "POST", "/api/v1/test-sms", json_body={"phone": "+79167654321"}
    )
    assert status == 200, body
    # A client with a responsible manager: one row each.
    status, body = await sms_service.post_event(make_event("client_order.ready"))
    assert status == 202, body
    # A client without one: the manager's row is skipped and has no manager id.
    loner = {"id": "C-2002", "name": "ИП Сидоров", "phone": "+7 916 000-11-22"}
    status, body = await sms_service.post_event(
        make_event("client_order.ready", client=loner, manager=None)
    )
    assert status == 202, body

    monkeypatch.setenv("VESTNIK_DATABASE__URL", sms_service.settings.database.url)
    code = await asyncio.get_running_loop().run_in_executor(None, main, ["journal"])

    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert len(lines) == 1 + 5, out  # the header, then five rows

    def row(*fragments: str) -> str:
        [found] = [line for line in lines if all(fragment in line for fragment in fragments)]
        return found

    assert "admin +7916***4321" in row("test_sms")
    assert "C-1001 +7916***4567" in row("C-1001")
    assert "mgr M-7 +7903***4567" in row("mgr M-7")
    assert "no responsible manager" in row("mgr -", "skipped")
    assert "C-2002 +7916***1122" in row("C-2002")
    assert "None" not in out
    assert "+79167654321" not in out


def test_journal_in_a_folder_without_a_database_says_what_to_do_and_creates_nothing(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [VESTNIK, "journal"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "vestnik: no database at ./vestnik.db: start `vestnik serve` (or `vestnik migrate`) "
        "first, or set database.url (VESTNIK_DATABASE__URL)"
    ]
    assert list(tmp_path.iterdir()) == []


def test_a_configured_sqlite_path_that_does_not_exist_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VESTNIK_DATABASE__URL", "sqlite+aiosqlite:///data/journal.db")
    (tmp_path / "data").mkdir()
    assert main(["journal"]) == 1
    assert "no database at data/journal.db" in capsys.readouterr().err
    assert list((tmp_path / "data").iterdir()) == []


def _config_with_sms_service(folder: Path, gateway: FakeHttpGateway) -> None:
    (folder / "vestnik.toml").write_text(
        f"""
[[sms_services]]
name = "main"
kind = "http"
base_url = "{gateway.base_url}"
token = "{gateway.token}"
""",
        encoding="utf-8",
    )


async def test_balance_in_a_folder_without_a_database_creates_none(
    tmp_path: Path, sms_gateway: FakeHttpGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    _config_with_sms_service(tmp_path, sms_gateway)
    code = await asyncio.get_running_loop().run_in_executor(None, main, ["balance"])
    assert code == 0
    assert "main (http): balance 1000" in capsys.readouterr().out
    assert await asyncio.to_thread(os.listdir, tmp_path) == ["vestnik.toml"]


async def test_test_sms_without_a_database_sends_nothing_and_creates_none(
    tmp_path: Path, sms_gateway: FakeHttpGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    _config_with_sms_service(tmp_path, sms_gateway)
    code = await asyncio.get_running_loop().run_in_executor(
        None, main, ["test-sms", "+79161234567"]
    )
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        "vestnik: no database at ./vestnik.db: start `vestnik serve` (or `vestnik migrate`) "
        "first, or set database.url (VESTNIK_DATABASE__URL)"
    )
    assert sms_gateway.sent == []
    assert await asyncio.to_thread(os.listdir, tmp_path) == ["vestnik.toml"]
