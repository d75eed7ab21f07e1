"""Crash: `kill -9` a `vestnik serve` after a client pressed an ERP button and while the
POST to the ERP hangs; after a restart the press reaches the ERP, signed, and nothing was
lost (the ERP may see the press in flight at the kill once more, never more)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dispatch.erp_actions.buttons import ErpButtons
from storage.database import create_database
from storage.models import Client, ErpActionPress, Event, Notification, TelegramLink
from storage.types import utcnow
from tests.fakes.erp import FakeErp
from tests.fakes.telegram import FakeTelegram
from tests.reliability.conftest import free_port, spawn_serve

SECRET = "crash-test-erp-callback-secret"
CHAT = 555_001


async def seed_sent_order(url: str) -> int:
    """A subscribed client, an event with one action, its client notification `sent`."""
    db = create_database(url)
    now = utcnow()
    try:
        async with db.transaction() as session:
            session.add(Client(id="C-1", name="ООО Ромашка", phone="+79161234567"))
            session.add(TelegramLink(chat_id=CHAT, user_id=CHAT, client_id="C-1"))
            event = Event(
                event_id="erp-crash-1",
                type="client_order.ready",
                occurred_at=now,
                client_id="C-1",
                payload={
                    "document": {"kind": "client_order", "number": "ЗК-1"},
                    "actions": [{"id": "confirm", "label": "Подтвердить заказ"}],
                },
            )
            session.add(event)
            await session.flush()
            notification = Notification(
                event_pk=event.id,
                event_type="client_order.ready",
                recipient="client",
                client_id="C-1",
                channel="telegram",
                status="sent",
                text="Заказ ЗК-1 готов к выдаче.",
                telegram_message_id=1,
                sent_at=now,
            )
            session.add(notification)
            await session.flush()
            return notification.id
    finally:
        await db.dispose()


async def stored_presses(url: str) -> list[ErpActionPress]:
    db = create_database(url)
    try:
        async with db.sessions() as session:
            return list((await session.execute(select(ErpActionPress))).scalars())
    finally:
        await db.dispose()


def write_config(workdir: Path, telegram: FakeTelegram, erp: FakeErp) -> None:
    (workdir / "vestnik.toml").write_text(
        f"""
[notify]
mode = "live"
reserve = "none"

[webhook]
secret = "crash-test-webhook-secret"

[admin]
token = "crash-test-admin-token"

[telegram]
token = "{telegram.token}"
api_base = "{telegram.base_url}"

[erp]
callback_url = "{erp.url}"
callback_secret = "{SECRET}"
retry_base_seconds = 0.1
retry_cap_seconds = 0.5
timeout_seconds = 300
poll_seconds = 0.2
""",
        encoding="utf-8",
    )


def serve_log(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")


async def until(check: Any, what: str, process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = asyncio.get_running_loop().time() + 60
    while not await check():
        assert process.returncode is None, serve_log(log)
        assert asyncio.get_running_loop().time() < deadline, f"{what}: {serve_log(log)}"
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_kill_9_between_a_press_and_its_delivery_loses_nothing(
    database_url: str, tmp_path: Path
) -> None:
    notification_id = await seed_sent_order(database_url)
    data = ErpButtons(SECRET).callback_data(notification_id, 0, "confirm")
    log = tmp_path / "serve.log"
    async with FakeTelegram() as telegram, FakeErp(SECRET).running() as erp:
        erp.hang = True
        write_config(tmp_path, telegram, erp)
        process = await spawn_serve(tmp_path, database_url, free_port())
        try:
            telegram.push_update(telegram.callback_query(CHAT, data, message_id=1))

            async def answered() -> bool:
                return bool(telegram.callback_answers)

            await until(answered, "the press answered", process, log)
            assert telegram.callback_answers[0].text == "Принято, менеджер свяжется с вами"

            async def posted() -> bool:
                return bool(erp.received)

            await until(posted, "the press posted to the ERP", process, log)
            process.send_signal(signal.SIGKILL)
            await asyncio.wait_for(process.wait(), 10)
            [pending] = await stored_presses(database_url)
            assert pending.delivered_at is None

            erp.hang = False
            process = await spawn_serve(tmp_path, database_url, free_port())

            async def delivered() -> bool:
                return any(p.delivered_at for p in await stored_presses(database_url))

            await until(delivered, "the press delivered after the restart", process, log)
            await asyncio.sleep(0.5)  # a late repeat would arrive by now
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), 20)

    assert len(erp.received) == 2, "the one in flight at the kill, then the delivery"
    assert all(signed for _, signed in erp.received)
    first, again = (body for body, _ in erp.received)
    assert first == again
    assert first["event_id"] == "erp-crash-1" and first["action"] == "confirm"
    assert first["client_id"] == "C-1" and first["document"]["number"] == "ЗК-1"
