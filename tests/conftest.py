"""Shared fixtures: a fresh database per test (PostgreSQL cloned from a migrated template, or a
copied migrated SQLite file) and a running Vestnik service on loopback.

PostgreSQL is not optional: when it cannot be reached the PostgreSQL tests fail, they are
never skipped (set VESTNIK_TEST_PG_URL to point them at another server).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.engine import make_url

from bot.app import create_app
from bot.http_server import GuardedAppRunner, make_runner
from bot.settings import Settings
from handlers.common import signature
from storage import directory, migrate, notifications
from storage.database import Database, create_database
from storage.models import Notification
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram

PG_URL = os.environ.get("VESTNIK_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
WEBHOOK_SECRET = "test-webhook-secret"
ADMIN_TOKEN = "test-admin-token"
RUN_ID = uuid.uuid4().hex[:8]


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_admin(sql: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(PG_URL), timeout=10)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _migrate(url: str) -> None:
    db = create_database(url)
    try:
        await migrate.upgrade(db)
    finally:
        await db.dispose()


def pytest_collection_finish(session: pytest.Session) -> None:
    """As `vestnik serve` does once started (bot/cli/serve.py): the modules' objects leave the
    collector's sight, so a full collection no longer pauses the loop for ~0.2 s in the
    middle of a test with short provider timeouts."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No VESTNIK_* variable or ./vestnik.toml of the developer leaks into a test."""
    for name in list(os.environ):
        if name.startswith("VESTNIK_") and name != "VESTNIK_TEST_PG_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database that each test clones (CREATE DATABASE … TEMPLATE)."""
    name = f"vestnik_tpl_{RUN_ID}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.fail(
            f"PostgreSQL is required for these tests and is not reachable at {PG_URL}: {exc}. "
            "Start it, or point VESTNIK_TEST_PG_URL at a server.",
            pytrace=False,
        )
    asyncio.run(_migrate(make_url(PG_URL).set(database=name).render_as_string(False)))
    yield name
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated, empty database for this test."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "vestnik.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    template_name: str = request.getfixturevalue("pg_template")
    name = f"vestnik_t_{RUN_ID}_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_settings(database_url: str, **sections: Any) -> Settings:
    """Settings for a test: signed webhook, admin token, the given database, test mode."""
    base: dict[str, Any] = {
        "database": {"url": database_url},
        "webhook": {"secret": WEBHOOK_SECRET},
        "admin": {"token": ADMIN_TOKEN},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return Settings.load(**base)


@dataclass
class Service:
    """A running Vestnik on loopback, seen from the outside (the ERP, an admin)."""

    client: TestClient[Any, Any]
    app: web.Application
    settings: Settings

    @property
    def db(self) -> Database:
        from handlers.common.keys import DB

        return self.app[DB]

    async def post_event(
        self,
        body: dict[str, Any] | bytes,
        *,
        secret: str | None = WEBHOOK_SECRET,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        all_headers = {"Content-Type": "application/json"}
        if secret is not None:
            all_headers[signature.HEADER] = signature.sign(secret, raw)
        all_headers.update(headers or {})
        response = await self.client.post("/api/v1/events", data=raw, headers=all_headers)
        return response.status, await response.json()

    async def wait_for_status(
        self, notification_id: int, *statuses: str, within: float = 10.0
    ) -> Notification:
        """Poll the journal until the notification reaches one of `statuses`."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            async with self.db.sessions() as session:
                row = await session.get(Notification, notification_id)
            if row is not None and row.status in statuses:
                return row
            if asyncio.get_running_loop().time() > deadline:
                found = row.status if row else "missing"
                raise AssertionError(
                    f"notification {notification_id} is {found}, not {statuses}; "
                    f"reason: {row.reason if row else '-'}"
                )
            await asyncio.sleep(0.02)

    async def history(self, notification_id: int) -> list[tuple[str | None, str, str | None]]:
        """(from, to, reason) of every status change, oldest first."""
        async with self.db.sessions() as session:
            rows = await notifications.get_history(session, notification_id)
        return [(row.from_status, row.to_status, row.reason) for row in rows]

    async def link_chat(
        self, chat_id: int, *, client_id: str | None = None, manager_id: str | None = None
    ) -> None:
        """Subscribe a chat as the bot would after /start (the directory row must exist)."""
        async with self.db.transaction() as session:
            await directory.link_chat(
                session,
                chat_id=chat_id,
                user_id=chat_id,
                client_id=client_id,
                manager_id=manager_id,
            )

    async def admin(
        self, method: str, path: str, *, json_body: Any = None, token: str | None = ADMIN_TOKEN
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.client.request(method, path, json=json_body, headers=headers)
        return response.status, await response.json()


class VestnikTestServer(TestServer):
    """aiohttp's TestServer with the runner `vestnik serve` uses (bot.http_server): the same
    header, keep-alive and connection limits."""

    def __init__(self, app: web.Application, settings: Settings) -> None:
        super().__init__(app, host="127.0.0.1")
        self.settings = settings

    async def _make_runner(self, **kwargs: Any) -> GuardedAppRunner:
        return make_runner(self.app, self.settings.http, **kwargs)


async def start_service(settings: Settings, *, run_workers: bool = True) -> Service:
    app = create_app(settings, run_workers=run_workers)
    client: TestClient[Any, Any] = TestClient(VestnikTestServer(app, settings))
    await client.start_server()
    return Service(client=client, app=app, settings=settings)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The storage layer alone on a fresh database (no app around it)."""
    database = create_database(database_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def service(database_url: str) -> AsyncIterator[Service]:
    """Vestnik in test mode on a fresh database."""
    running = await start_service(make_settings(database_url))
    try:
        yield running
    finally:
        await running.client.close()


@pytest.fixture
async def sms_service(database_url: str, sms_gateway: FakeHttpGateway) -> AsyncIterator[Service]:
    """Test mode with an SMS provider: the test SMS really goes to the fake gateway."""
    gateway = {
        "name": "main",
        "kind": "http",
        "base_url": sms_gateway.base_url,
        "token": sms_gateway.token,
    }
    running = await start_service(make_settings(database_url, sms_services=[gateway]))
    try:
        yield running
    finally:
        await running.client.close()


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    """A loopback Telegram Bot API server."""
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def sms_gateway() -> AsyncIterator[FakeHttpGateway]:
    """A loopback SMS provider of the generic `http` kind."""
    async with FakeHttpGateway() as fake:
        yield fake


# Fast retries and polling, so failure scenarios finish in a fraction of a second.
FAST_DELIVERY = {
    "retry_base_seconds": 0.05,
    "retry_cap_seconds": 0.2,
    "poll_seconds": 0.2,
    "shutdown_grace_seconds": 2.0,
}


def live_settings(
    database_url: str, telegram: FakeTelegram, gateway: FakeHttpGateway, **sections: Any
) -> Settings:
    """Live mode with the fake bot and the fake `http` SMS provider named `main`."""
    defaults: dict[str, Any] = {
        "notify": {"mode": "live"},
        "telegram": {"token": telegram.token, "api_base": telegram.base_url},
        "sms_services": [
            {
                "name": "main",
                "kind": "http",
                "base_url": gateway.base_url,
                "token": gateway.token,
                "sender": "PARTS",
                "timeout_seconds": 0.5,
                "rate_per_second": 1000,
            }
        ],
        "delivery": FAST_DELIVERY,
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(defaults.get(key), dict):
            defaults[key] = {**defaults[key], **value}
        else:
            defaults[key] = value
    return make_settings(database_url, **defaults)


@pytest.fixture
async def live_service(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> AsyncIterator[Service]:
    """Vestnik in live mode: Telegram through the fake bot, SMS through the fake gateway."""
    running = await start_service(live_settings(database_url, telegram, sms_gateway))
    try:
        yield running
    finally:
        await running.client.close()
