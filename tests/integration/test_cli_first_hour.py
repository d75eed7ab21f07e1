"""A new user's first hour with `vestnik` (issue 14): every mistake is one line on stderr,
told before anything heavy loads; `--config` anywhere; `--version`; no aiogram without a bot;
a banner that ends with the next command to try.

Each test runs the real CLI in a subprocess, in an empty folder, with no VESTNIK_* variable
but the ones it sets.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bot.cli.main import COMMANDS
from tests.conftest import PG_URL

REPO = Path(__file__).resolve().parents[2]
ACCEPTED = "sqlite+aiosqlite:///PATH/vestnik.db or postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DB"


def cli_env(**variables: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("VESTNIK_")}
    return {**env, "PYTHONPATH": str(REPO), **variables}


def run_python(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=tmp_path,
        env=cli_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=120,
    )


def vestnik(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, python: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return run_python(tmp_path, *python, "-m", "bot.cli", *args, env=env)


def only_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def loaded_modules(importtime_stderr: str) -> set[str]:
    """The modules `python -X importtime` reports as imported."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in importtime_stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


# ------------------------------------------------------------ 1. --config anywhere


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "typo.toml", "journal"],
        ["journal", "--config", "typo.toml"],
        # Given twice, the one after the command wins (as --help says).
        ["--config", "fine.toml", "journal", "--config", "typo.toml"],
    ],
)
def test_config_is_read_before_or_after_the_command(tmp_path: Path, argv: list[str]) -> None:
    (tmp_path / "typo.toml").write_text("[http]\nprot = 8081\n", encoding="utf-8")
    (tmp_path / "fine.toml").write_text("[http]\nport = 8081\n", encoding="utf-8")
    result = vestnik(tmp_path, *argv)
    assert result.returncode == 2
    assert result.stdout == ""
    assert only_line(result) == (
        "vestnik: invalid configuration: unknown key `http.prot` in typo.toml, "
        "did you mean `http.port`?"
    )


# ------------------------------------------------------------ 2. --version, descriptions


def test_version_comes_from_the_package_and_every_command_explains_itself(
    tmp_path: Path,
) -> None:
    result = vestnik(tmp_path, "--version")
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"vestnik {version('vestnik')}\n",
        "",
    )
    for command in COMMANDS:
        shown = vestnik(tmp_path, command, "--help")
        assert shown.returncode == 0, shown.stderr
        # usage, then the description, then the arguments.
        blocks = shown.stdout.split("\n\n")
        assert blocks[0].startswith(f"usage: vestnik {command}")
        assert not blocks[1].startswith(("options:", "positional arguments:")), command
        assert len(blocks[1].split()) >= 8, (command, blocks[1])
        assert "--config PATH" in shown.stdout


# ------------------------------------------------------------ 3. one line per mistake


@pytest.mark.parametrize(
    ("command", "variables", "toml", "line"),
    [
        (
            "migrate",
            {"VESTNIK_DATABASE__URL": "postgres://vestnik:s3cret@db/vestnik"},
            None,
            "database.url (VESTNIK_DATABASE__URL): use postgresql+asyncpg://vestnik:***@db/"
            "vestnik (Vestnik talks to PostgreSQL through asyncpg; postgres:// needs a driver "
            "it does not have)",
        ),
        (
            "serve",
            {"VESTNIK_DATABASE__URL": "postgresql://vestnik@db/vestnik"},
            None,
            "database.url (VESTNIK_DATABASE__URL): use postgresql+asyncpg://vestnik@db/vestnik "
            "(Vestnik talks to PostgreSQL through asyncpg; postgresql:// needs a driver it "
            "does not have)",
        ),
        (
            "journal",
            {},
            "[database]\nurl = 'sqlite:///./vestnik.db'\n",
            "database.url in vestnik.toml (VESTNIK_DATABASE__URL): use "
            "sqlite+aiosqlite:///./vestnik.db (Vestnik opens SQLite through aiosqlite; "
            "sqlite:// needs a driver it does not have)",
        ),
        (
            "check-config",
            {"VESTNIK_DATABASE__URL": "mysql://root@db/shop"},
            None,
            "database.url (VESTNIK_DATABASE__URL): mysql:// is not a database Vestnik uses; "
            f"use {ACCEPTED}",
        ),
        (
            "migrate",
            {"VESTNIK_DATABASE__URL": "postgresql+asyncpg://vestnik@db:five/vestnik"},
            None,
            f"database.url (VESTNIK_DATABASE__URL): the port 'five' is not a number; use "
            f"{ACCEPTED}",
        ),
        (
            "serve",
            {"VESTNIK_DATABASE__URL": "vestnik.db"},
            None,
            f"database.url (VESTNIK_DATABASE__URL): not a database URL; use {ACCEPTED}",
        ),
        (
            "journal",
            {"VESTNIK_NOTIFY__ADMIN_EMAILS": "a@b.c"},
            None,
            'VESTNIK_NOTIFY__ADMIN_EMAILS: expected a JSON list such as ["a@b.c"]',
        ),
        (
            "serve",
            {"VESTNIK_HTTP__PROT": "8081"},
            None,
            "unknown variable VESTNIK_HTTP__PROT, did you mean VESTNIK_HTTP__PORT?",
        ),
        (
            "migrate",
            {"VESTNIK_HTPP__PORT": "8081"},
            None,
            "unknown variable VESTNIK_HTPP__PORT, did you mean VESTNIK_HTTP__PORT?",
        ),
        (
            "check-config",
            {},
            "[smtp]\nhots = 'mail.example.com'\n",
            "unknown key `smtp.hots` in vestnik.toml, did you mean `smtp.host`?",
        ),
        (
            "serve",
            {},
            "[[sms_services]]\nname = 'main'\nkind = 'smsc'\nlogn = 'shop'\n",
            "unknown key `sms_services[0].logn` in vestnik.toml, did you mean "
            "`sms_services[0].login`?",
        ),
        (
            "journal",
            {"VESTNIK_NOTIFY__MODE": "live"},
            None,
            "notify.mode (VESTNIK_NOTIFY__MODE) = 'live' needs webhook.secret "
            "(VESTNIK_WEBHOOK__SECRET), the HMAC secret shared with the ERP",
        ),
        (
            "serve",
            {},
            "[notify]\nsms_service = 'main'\n",
            "notify.sms_service (VESTNIK_NOTIFY__SMS_SERVICE) = 'main' is not a name from "
            "sms_services (none configured)",
        ),
        (
            "check-config",
            {"VESTNIK_HTTP__HOST": "0.0.0.0"},
            None,
            "http.host (VESTNIK_HTTP__HOST) = '0.0.0.0' (not loopback) needs admin.token "
            "(VESTNIK_ADMIN__TOKEN), the bearer token of the admin API: set a random string "
            "of at least 16 characters (`openssl rand -hex 32`)",
        ),
    ],
)
def test_a_configuration_mistake_is_one_line_naming_the_key_and_exit_2(
    tmp_path: Path, command: str, variables: dict[str, str], toml: str | None, line: str
) -> None:
    if toml is not None:
        (tmp_path / "vestnik.toml").write_text(toml, encoding="utf-8")
    result = vestnik(tmp_path, command, env=variables)
    assert result.returncode == 2
    assert result.stdout == ""
    assert only_line(result) == f"vestnik: invalid configuration: {line}"
    assert "s3cret" not in result.stderr
    assert list(tmp_path.iterdir()) == ([tmp_path / "vestnik.toml"] if toml else [])


def test_a_single_underscore_or_unknown_variable_is_a_warning_not_a_failure(
    tmp_path: Path,
) -> None:
    result = vestnik(
        tmp_path,
        "migrate",
        env={
            "VESTNIK_NOTIFY_MODE": "live",
            "VESTNIK_TEST_SMS_DAILY_LIMIT": "3",
            "VESTNIK_NOTIFI": "{}",
            "VESTNIK_LOG__LEVEL": "WARNING",
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("database schema upgraded: empty -> ")
    assert result.stderr.splitlines() == [
        "vestnik: warning: ignoring VESTNIK_NOTIFI: no setting reads it, did you mean "
        "VESTNIK_NOTIFY?",
        "vestnik: warning: ignoring VESTNIK_NOTIFY_MODE: did you mean VESTNIK_NOTIFY__MODE?",
        "vestnik: warning: ignoring VESTNIK_TEST_SMS_DAILY_LIMIT: did you mean "
        "VESTNIK_TEST_SMS__DAILY_LIMIT?",
    ]


@pytest.mark.postgres
@pytest.mark.parametrize("command", ["migrate", "serve"])
@pytest.mark.parametrize(
    ("part", "value", "answer"),
    [
        ("database", "vestnik_no_such_db", 'database "vestnik_no_such_db" does not exist'),
        ("username", "vestnik_no_such_role", 'role "vestnik_no_such_role" does not exist'),
    ],
)
def test_a_database_or_role_that_does_not_exist_is_one_line_and_exit_2(
    tmp_path: Path, pg_template: str, command: str, part: str, value: str, answer: str
) -> None:
    """`pg_template` fails the test when the server is not there: the point is what a server
    answers about names it does not have."""
    url = make_url(PG_URL).set(**{part: value}).render_as_string(hide_password=False)
    shown = make_url(url).render_as_string(hide_password=True)
    result = vestnik(tmp_path, command, env={"VESTNIK_DATABASE__URL": url})
    assert result.returncode == 2
    assert only_line(result) == (
        f"vestnik: wrong database.url (VESTNIK_DATABASE__URL) {shown}: {answer} "
        "(the URL is wrong: fix it, or create what it names)"
    )


UNREACHABLE = "postgresql+asyncpg://postgres@127.0.0.1:1/vestnik"
NO_FOLDER = "sqlite+aiosqlite:///data/vestnik.db"


@pytest.mark.parametrize("command", ["migrate", "serve"])
@pytest.mark.parametrize(
    ("url", "code", "line"),
    [
        (
            UNREACHABLE,
            1,
            f"cannot reach the database {UNREACHABLE}: ConnectionRefusedError: [Errno 111] "
            "Connect call failed ('127.0.0.1', 1) (unreachable: is the server running, and "
            "are the URL's host and port right?)",
        ),
        (
            NO_FOLDER,
            2,
            f"wrong database.url (VESTNIK_DATABASE__URL) {NO_FOLDER}: the folder data of the "
            "SQLite file does not exist (the URL is wrong: fix it, or create what it names)",
        ),
    ],
)
def test_an_unreachable_server_or_a_missing_folder_is_one_line(
    tmp_path: Path, command: str, url: str, code: int, line: str
) -> None:
    result = vestnik(tmp_path, command, env={"VESTNIK_DATABASE__URL": url})
    assert result.returncode == code
    assert only_line(result) == f"vestnik: {line}"
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------ 4. aiogram only with a bot


def test_serve_without_a_token_never_imports_aiogram(tmp_path: Path, busy_port: int) -> None:
    """The whole start of `serve` (settings, app, migrations, scheduler) up to listening,
    which fails on a port already taken."""
    result = vestnik(tmp_path, "serve", "--port", str(busy_port), python=("-X", "importtime"))
    assert result.returncode == 1
    assert f"vestnik: cannot listen on 127.0.0.1:{busy_port}" in result.stderr
    modules = loaded_modules(result.stderr)
    assert {"bot.app", "bot.scheduler", "storage.migrate"} <= modules
    assert not {name for name in modules if name.split(".")[0] == "aiogram"}


def test_a_config_typo_is_told_before_aiogram_or_the_app_load(tmp_path: Path) -> None:
    (tmp_path / "vestnik.toml").write_text("[http]\nprot = 8081\n", encoding="utf-8")
    for command in ("check-config", "serve"):
        result = vestnik(tmp_path, command, python=("-X", "importtime"))
        assert result.returncode == 2
        modules = loaded_modules(result.stderr)
        assert "bot.settings" in modules
        assert not modules & {"aiogram", "bot.app", "bot.cli.check_config", "sqlalchemy"}


@pytest.mark.parametrize(("token", "loaded"), [(None, False), ("123456:fake-token", True)])
def test_the_app_imports_aiogram_only_when_a_token_is_set(
    tmp_path: Path, token: str | None, loaded: bool
) -> None:
    script = (
        "import sys\n"
        "from bot.app import create_app\n"
        "from bot.settings import Settings\n"
        "create_app(Settings.load())\n"
        "print('aiogram' in sys.modules)\n"
    )
    env = {"VESTNIK_TELEGRAM__TOKEN": token} if token else {}
    result = run_python(tmp_path, "-c", script, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{loaded}\n"


# ------------------------------------------------------------ 5. the banner's next step


def test_the_banner_ends_with_the_next_command_to_try(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    (tmp_path / "mine.toml").write_text(f"[http]\nport = {port}\n", encoding="utf-8")
    server = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--config", "mine.toml"],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        banner: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (banner and banner[-1].startswith("Next:")):
            line = server.stdout.readline()
            if not line:
                break
            banner.append(line.rstrip("\n"))
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert banner[0] == f"Vestnik listening on http://127.0.0.1:{port}"
    assert "  config:   mine.toml" in banner
    assert banner[-1] == (
        "Next: in another terminal, `vestnik send-event examples/event.json`, then "
        "`vestnik journal` to see its notifications (or stop this and start "
        "`vestnik serve --sandbox` to watch them reach fake phones and chats)"
    )
