"""`vestnik serve --sandbox`: live mode against the built-in loopback fakes, as a newcomer
meets it — an SMS for a client who is not subscribed, a subscription from the page, then
Telegram, and a manager's button pressed from the page."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.cli.main import main
from bot.sandbox.wiring import Sandbox
from bot.settings import Settings
from storage.models import Notification
from tests.conftest import FAST_DELIVERY, Service, VestnikTestServer
from tests.events import make_event
from tests.integration.test_cli import free_port, vestnik, wait_for_line

CLIENT_PHONE = "+79161234567"  # the client of tests.events, "+7 916 123-45-67"
MANAGER_PHONE = "+79031234567"
Message = dict[str, Any]


@pytest.fixture
async def sandbox_service(database_url: str) -> AsyncIterator[Service]:
    """The sandbox as `vestnik serve --sandbox` builds it, on a fresh database; no webhook
    secret nor admin token, as on a fresh clone. client_order.ready waits for the manager."""
    sandbox = Sandbox()
    base = Settings.load(
        database={"url": database_url},
        delivery=FAST_DELIVERY,
        event_types={"client_order.ready": {"confirm_before_send": True}},
    )
    settings = sandbox.settings_for(base)
    app = create_app(settings)
    sandbox.attach(app)
    client: TestClient[Any, Any] = TestClient(VestnikTestServer(app, settings))
    await client.start_server()
    try:
        yield Service(client=client, app=app, settings=settings)
    finally:
        await client.close()


async def received(service: Service) -> list[Message]:
    response = await service.client.get("/api/v1/sandbox/messages")
    assert response.status == 200
    messages: list[Message] = (await response.json())["messages"]
    return messages


async def wait_for_message(
    service: Service, predicate: Callable[[Message], bool], within: float = 10.0
) -> Message:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = [message for message in await received(service) if predicate(message)]
        if found:
            return found[-1]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no such message; received: {await received(service)}")
        await asyncio.sleep(0.05)


async def post_form(service: Service, path: str, **fields: str) -> int:
    """Submit a form of the page as a browser does, with the page's own origin."""
    origin = str(service.client.make_url("/")).rstrip("/")
    headers = {"Origin": origin, "Sec-Fetch-Site": "same-origin"}
    response = await service.client.post(path, data=fields, headers=headers, allow_redirects=False)
    return response.status


async def journal_row(service: Service, notification_id: int) -> Notification:
    async with service.db.sessions() as session:
        row = await session.get(Notification, notification_id)
    assert row is not None
    return row


async def post_unsigned(service: Service, body: dict[str, Any]) -> int:
    status, answer = await service.post_event(body, secret=None)
    assert status == 202, answer
    notification_id: int = answer["notifications"][0]["id"]
    return notification_id


async def test_sms_then_subscription_then_telegram_and_a_pressed_button(
    sandbox_service: Service,
) -> None:
    service = sandbox_service
    # 1. The client has no chat yet: the reserve route, SMS through the fake gateway.
    sms_id = await post_unsigned(service, make_event("client_order.created"))
    sms = await wait_for_message(service, lambda m: m["channel"] == "sms")
    row = await service.wait_for_status(sms_id, "sent")
    assert sms["to"] == CLIENT_PHONE
    assert sms["notification_id"] == sms_id
    assert sms["text"] == row.text and "ЗК-000123" in sms["text"]
    assert sms["segments"] == row.segments and sms["encoding"] == row.encoding
    assert sms["cost"] == f"{row.segments * 3.5:.2f}"
    assert row.provider == "sandbox" and row.provider_message_id.startswith("sandbox-")

    page = await service.client.get("/sandbox/")
    html = await page.text()
    assert page.status == 200 and page.content_type == "text/html"
    assert "ЗК-000123" in html and f"уведомление №{sms_id}" in html
    assert f"{row.segments} сегм." in html
    assert f"{row.segments * 3.5:.2f}".replace(".", ",") + " ₽" in html
    assert "3,50 ₽ за сегмент" in html

    # 2. The newcomer subscribes the client from the page: /start, then the contact.
    assert await post_form(service, "/sandbox/subscribe", phone="+7 916 123-45-67") == 303
    chat = await wait_for_message(
        service, lambda m: m["channel"] == "telegram" and "подписаны" in m["text"]
    )
    assert chat["to"] == CLIENT_PHONE.lstrip("+")
    assert chat["notification_id"] is None  # the bot's own reply, not a notification

    # 3. The next event reaches the client in Telegram.
    telegram_id = await post_unsigned(service, make_event("client_order.posted"))
    delivered = await wait_for_message(service, lambda m: m["notification_id"] == telegram_id)
    row = await service.wait_for_status(telegram_id, "sent")
    assert delivered["channel"] == "telegram" and delivered["to"] == chat["to"]
    assert delivered["text"] == row.text and row.channel == "telegram"

    # 4. The manager subscribes too; a type that waits for confirmation prompts them.
    assert await post_form(service, "/sandbox/subscribe", phone=MANAGER_PHONE) == 303
    confirm_id = await post_unsigned(service, make_event("client_order.ready"))
    await service.wait_for_status(confirm_id, "awaiting_confirmation")
    prompt = await wait_for_message(
        # The prompt's journal row is written just after Telegram took the message.
        service,
        lambda m: m["to"] == MANAGER_PHONE.lstrip("+") and m["notification_id"] is not None,
    )
    assert prompt["notification_id"] == confirm_id and prompt["buttons"]
    send = next(b for row in prompt["buttons"] for b in row if b["text"].endswith("Отправить"))

    # 5. Pressing «Отправить» on the page confirms it: the client gets it by Telegram.
    status = await post_form(
        service,
        "/sandbox/press",
        chat=str(prompt["chat_id"]),
        message=str(prompt["message_id"]),
        data=send["callback_data"],
    )
    assert status == 303
    row = await service.wait_for_status(confirm_id, "sent")
    assert row.channel == "telegram"
    to_client = await wait_for_message(service, lambda m: m["notification_id"] == confirm_id)
    assert to_client["to"] == chat["to"]
    settled = next(
        m for m in await received(service) if m.get("message_id") == prompt["message_id"]
    )
    assert settled["edited"] and settled["buttons"] == []
    history = await service.history(confirm_id)
    assert ("awaiting_confirmation", "pending") in [(f, t) for f, t, _ in history]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_forms_refuse_cross_site_and_bad_input(sandbox_service: Service) -> None:
    service = sandbox_service
    cross_site = await service.client.post(
        "/sandbox/subscribe",
        data={"phone": CLIENT_PHONE},
        headers={"Sec-Fetch-Site": "cross-site"},
        allow_redirects=False,
    )
    assert cross_site.status == 403
    assert (await cross_site.json())["error"]["code"] == "forbidden"
    foreign = await service.client.post(
        "/sandbox/press",
        data={"chat": "1", "message": "1", "data": "x"},
        headers={"Origin": "http://evil.example"},
        allow_redirects=False,
    )
    assert foreign.status == 403
    assert await received(service) == []  # nobody was subscribed nor pressed anything

    bad_phone = await service.client.post("/sandbox/subscribe", data={"phone": "позвоните"})
    assert bad_phone.status == 422
    assert (await bad_phone.json())["error"]["message"].startswith("phone:")
    as_json = await service.client.post("/sandbox/subscribe", json={"phone": CLIENT_PHONE})
    assert as_json.status == 415
    unknown = await service.client.post(
        "/sandbox/press", data={"chat": "79161234567", "message": "99", "data": "nt:send:1"}
    )
    assert unknown.status == 404
    assert (await unknown.json())["error"]["code"] == "not_found"

    # A button the message does not carry cannot be forged into a press.
    assert await post_form(service, "/sandbox/subscribe", phone=CLIENT_PHONE) == 303
    greeting = await wait_for_message(service, lambda m: "Здравствуйте" in m["text"])
    forged = await service.client.post(
        "/sandbox/press",
        data={"chat": greeting["to"], "message": str(greeting["message_id"]), "data": "nt:send:1"},
    )
    assert forged.status == 422


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_without_the_flag_there_is_no_sandbox(service: Service) -> None:
    for method, path in (
        ("GET", "/sandbox/"),
        ("GET", "/api/v1/sandbox/messages"),
        ("POST", "/sandbox/subscribe"),
    ):
        response = await service.client.request(method, path, data={"phone": CLIENT_PHONE})
        assert response.status == 404, path


def test_sandbox_refuses_a_host_beyond_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--sandbox", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vestnik: --sandbox listens on loopback only")
    assert "'0.0.0.0'" in err and len(err.splitlines()) == 1


def test_serve_sandbox_and_send_event_from_a_second_terminal(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = vestnik("serve", "--sandbox", "--port", str(port), cwd=tmp_path)
    try:
        banner = wait_for_line(server, "Next: in another terminal run")
        assert "Sandbox: live mode" in banner
        assert f"{base}/sandbox/" in banner
        assert "sqlite+aiosqlite:///./vestnik-sandbox.db" in banner
        assert banner.count("Next:") == 1  # the sandbox's own next step, not the generic one

        event_file = tmp_path / "event.json"
        event_file.write_text(
            json.dumps(make_event("client_order.created", event_id="tour-1"), ensure_ascii=False),
            encoding="utf-8",
        )
        sent = vestnik("send-event", str(event_file), "--url", base, cwd=tmp_path)
        out, err = sent.communicate(timeout=30)
        assert sent.returncode == 0, err
        assert "HTTP 202" in out and '"channel": "sms"' in out

        messages: list[Message] = []
        for _ in range(100):
            with urllib.request.urlopen(f"{base}/api/v1/sandbox/messages", timeout=5) as reply:
                messages = json.loads(reply.read())["messages"]
            if messages or server.poll() is not None:
                break
            time.sleep(0.1)
        assert [(m["channel"], m["to"]) for m in messages] == [("sms", CLIENT_PHONE)]
        assert "ЗК-000123" in messages[0]["text"]
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=20)
    assert server.returncode == 0, err
    assert "Stopped." in out and "Traceback" not in err
    assert (tmp_path / "vestnik-sandbox.db").exists()
    assert not (tmp_path / "vestnik.db").exists()
