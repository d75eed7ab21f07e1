"""`vestnik` as a user runs it: the embedded default, send-event, journal, errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.cli.main import main
from tests.events import make_event


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def vestnik(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(process: subprocess.Popen[str], fragment: str, timeout: float = 30) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if fragment in line:
            return "".join(seen)
    stderr = process.stderr.read() if process.stderr else ""
    raise AssertionError(f"{fragment!r} not printed; stdout={seen!r} stderr={stderr!r}")


def test_embedded_default_serves_accepts_an_event_and_shows_it_in_the_journal(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {"VESTNIK_HTTP__PORT": str(port)}
    server = vestnik("serve", cwd=tmp_path, env=env)
    try:
        banner = wait_for_line(server, "See README.md")
        assert f"http://127.0.0.1:{port}" in banner
        assert "mode:     test" in banner
        assert "sqlite+aiosqlite:///./vestnik.db" in banner
        assert "VESTNIK_WEBHOOK__SECRET" in banner

        event_file = tmp_path / "event.json"
        event_file.write_text(
            json.dumps(make_event("client_order.ready", event_id="cli-1"), ensure_ascii=False),
            encoding="utf-8",
        )
        sent = vestnik("send-event", str(event_file), cwd=tmp_path, env=env)
        out, err = sent.communicate(timeout=30)
        assert sent.returncode == 0, err
        assert "HTTP 202" in out
        assert '"status": "test"' in out

        again = vestnik("send-event", str(event_file), cwd=tmp_path, env=env)
        out, _ = again.communicate(timeout=30)
        assert "HTTP 200" in out and '"duplicate": true' in out

        journal = vestnik("journal", "--status", "test", cwd=tmp_path, env=env)
        out, err = journal.communicate(timeout=30)
        assert journal.returncode == 0, err
        assert "client_order.ready" in out
        assert "ЗК-000123" in out
        assert "+7916***4567" in out
        assert "+79161234567" not in out

        # An operator runs the confirmations' expiry now rather than at its next slot.
        job = vestnik("run-job", "expire_confirmations", cwd=tmp_path, env=env)
        out, err = job.communicate(timeout=30)
        assert job.returncode == 0, err
        assert json.loads(out) == {"expired": 0}
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=15)
    assert server.returncode == 0, err
    assert "Stopped." in out
    assert "Traceback" not in err
    assert (tmp_path / "vestnik.db").exists()


def test_migrate_twice_reports_up_to_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    assert "upgraded: empty ->" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    assert "up to date" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["journal", "--limit", "zero"], "expected a whole number"),
        (["journal", "--status", "lost"], "invalid choice"),
        (["frobnicate"], "invalid choice"),
        (["--config", "missing.toml", "journal"], "does not exist"),
        (["send-event", "missing.json"], "cannot read missing.json"),
        (["run-job", "reboot"], "invalid choice: 'reboot'"),
    ],
)
def test_wrong_usage_is_one_clear_line_and_exit_2(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(argv)
    except SystemExit as exited:  # argparse exits by itself on usage errors
        code = int(exited.code or 0)
    assert code == 2
    err = capsys.readouterr().err
    assert fragment in err
    assert "Traceback" not in err


def test_bad_config_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VESTNIK_HTTP__PORT", "eighty")
    assert main(["journal"]) == 2
    err = capsys.readouterr().err
    assert "http.port" in err and "VESTNIK_HTTP__PORT" in err


def test_unreachable_database_is_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VESTNIK_DATABASE__URL", "postgresql+asyncpg://postgres@127.0.0.1:1/x")
    assert main(["migrate"]) == 1
    assert "cannot reach the database" in capsys.readouterr().err


def test_send_event_to_a_server_that_is_not_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(make_event()), encoding="utf-8")
    assert main(["send-event", str(event_file), "--url", f"http://127.0.0.1:{free_port()}"]) == 1
    assert "is `vestnik serve` running?" in capsys.readouterr().err


def test_run_job_on_a_server_that_is_not_running(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run-job", "balance", "--url", f"http://127.0.0.1:{free_port()}"]) == 1
    assert "is `vestnik serve` running?" in capsys.readouterr().err


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for command in ("serve", "migrate", "send-event", "journal", "run-job", "check-config"):
        assert command in out


def _sms_config(tmp_path: Path, gateway_url: str, token: str) -> None:
    (tmp_path / "vestnik.toml").write_text(
        f"""
[notify]
low_balance_threshold = 2000

[[sms_services]]
name = "main"
kind = "http"
base_url = "{gateway_url}"
token = "{token}"
price_per_sms = "1.00"
""",
        encoding="utf-8",
    )


async def test_balance_and_test_sms_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from tests.fakes.sms_http import FakeHttpGateway

    async with FakeHttpGateway() as gateway:
        _sms_config(tmp_path, gateway.base_url, gateway.token or "")
        loop = asyncio.get_running_loop()
        # The CLI runs its own event loop: call it from a worker thread.
        assert await loop.run_in_executor(None, main, ["migrate"]) == 0
        assert await loop.run_in_executor(None, main, ["balance"]) == 0
        out = capsys.readouterr().out
        assert "main (http): balance 1000.0 RUB = 1000 SMS at 1.00 (configured price)" in out
        assert "BELOW threshold 2000 SMS" in out

        assert await loop.run_in_executor(None, main, ["test-sms", "8 916 765-43-21"]) == 0
        out = capsys.readouterr().out
        assert "sent via main" in out and "+7916***4321" in out
        [sms] = gateway.sent
        assert sms.phone == "+79167654321"

        gateway.fail_next("no_money")
        assert await loop.run_in_executor(None, main, ["test-sms", "+79167654321"]) == 1
        assert "failed" in capsys.readouterr().err

        assert await loop.run_in_executor(None, main, ["test-sms", "call me"]) == 2
        assert "example: +79161234567" in capsys.readouterr().err
        assert await loop.run_in_executor(None, main, ["balance", "--service", "nope"]) == 2
        assert "no SMS service named 'nope'" in capsys.readouterr().err


def test_balance_without_any_sms_service_says_what_to_add(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["balance"]) == 2
    assert "[[sms_services]]" in capsys.readouterr().err


def test_check_config_reports_one_line_per_check(capsys: pytest.CaptureFixture[str]) -> None:
    # A fresh folder: no database file yet, which `serve` would create; not created here.
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert "warn database" in out and "does not exist yet" in out
    assert not Path("vestnik.db").exists()

    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main(["check-config"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("ok") and "database" in line for line in lines)
    assert any(line.startswith("skip") and "telegram" in line for line in lines)
    assert not any(line.startswith("FAIL") for line in lines)
