"""Webhook mode: Vestnik registers its webhook at start, Telegram POSTs updates with the
secret header, anything without it is refused, and a redelivered update acts once."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import create_app
from bot.settings import ConfigError, Settings
from storage.models import TelegramUpdate
from tests.conftest import Service, live_settings
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram
from tests.integration.test_bot_support import (
    CLIENT_CHAT,
    CLIENT_PHONE,
    MANAGER_CHAT,
    STRANGER_CHAT,
    add_client,
    add_manager,
    chat_messages,
    links,
)

SECRET = "s3cret-Token_1-for-webhooks"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def webhook_settings(
    database_url: str,
    telegram: FakeTelegram,
    sms_gateway: FakeHttpGateway,
    *,
    public_url: str | None,
    **telegram_settings: Any,
) -> Settings:
    """The live settings of the other scenarios, with the bot in webhook mode."""
    settings = live_settings(database_url, telegram, sms_gateway, http={"public_url": public_url})
    bot_settings = settings.telegram.model_copy(update={"mode": "webhook", **telegram_settings})
    return settings.model_copy(update={"telegram": bot_settings})


async def start_webhook_service(
    database_url: str,
    telegram: FakeTelegram,
    sms_gateway: FakeHttpGateway,
    **telegram_settings: Any,
) -> Service:
    port = free_port()
    settings = webhook_settings(
        database_url,
        telegram,
        sms_gateway,
        public_url=f"http://127.0.0.1:{port}/",
        **telegram_settings,
    )
    app = create_app(settings)
    client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1", port=port))
    await client.start_server()
    return Service(client=client, app=app, settings=settings)


@pytest.fixture
async def webhook_service(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> AsyncIterator[Service]:
    running = await start_webhook_service(
        database_url, telegram, sms_gateway, webhook_secret=SECRET
    )
    try:
        yield running
    finally:
        await running.client.close()


def webhook_url(service: Service) -> str:
    return (service.settings.http.public_url or "").rstrip("/") + "/telegram/webhook"


async def test_the_webhook_is_registered_at_start_with_the_secret(
    webhook_service: Service, telegram: FakeTelegram
) -> None:
    assert telegram.webhook.url == webhook_url(webhook_service)
    assert telegram.webhook.secret_token == SECRET
    assert set(telegram.webhook.allowed_updates or []) == {
        "message",
        "callback_query",
        "my_chat_member",
    }
    assert telegram.requests["getUpdates"] == 0


async def test_an_update_with_the_secret_is_handled_before_the_answer(
    webhook_service: Service, telegram: FakeTelegram
) -> None:
    await add_client(webhook_service)

    delivery = await telegram.deliver(telegram.contact(CLIENT_CHAT, CLIENT_PHONE))

    assert delivery.status == 200
    [reply] = telegram.messages_to(CLIENT_CHAT)
    assert "вы подписаны" in (reply.text or "")
    assert [link.client_id for link in await links(webhook_service, CLIENT_CHAT)] == ["C-1001"]


async def test_requests_without_the_right_secret_get_401_and_do_nothing(
    webhook_service: Service, telegram: FakeTelegram
) -> None:
    url = webhook_url(webhook_service)
    for secret in (None, "", "wrong-secret"):
        update = telegram.command(STRANGER_CHAT, "/start")
        delivery = await telegram.post_webhook(url, update, secret)
        assert delivery.status == 401, secret
        assert '"code": "unauthorized"' in delivery.body
    assert telegram.messages_to(STRANGER_CHAT) == []
    async with webhook_service.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(TelegramUpdate)) == 0


async def test_a_redelivered_update_acts_once(
    webhook_service: Service, telegram: FakeTelegram
) -> None:
    await add_manager(webhook_service, chat_id=MANAGER_CHAT)
    await add_client(webhook_service)
    await webhook_service.link_chat(CLIENT_CHAT, client_id="C-1001")
    status, _ = await webhook_service.admin(
        "PUT", "/api/v1/settings", json_body={"chat_enabled": True}
    )
    assert status == 200
    update = telegram.message(CLIENT_CHAT, "Мой заказ готов?")

    first = await telegram.deliver(update)
    second = await telegram.deliver(update)

    assert (first.status, second.status) == (200, 200)
    assert len(telegram.messages_to(MANAGER_CHAT)) == 1
    assert len(await chat_messages(webhook_service)) == 1


async def test_an_update_whose_handling_failed_is_handled_when_redelivered(
    webhook_service: Service, telegram: FakeTelegram
) -> None:
    telegram.fail_next("sendMessage", chat_id=STRANGER_CHAT, error="server_error")
    update = telegram.command(STRANGER_CHAT, "/start")

    failed = await telegram.deliver(update)
    assert failed.status == 500
    assert telegram.messages_to(STRANGER_CHAT) == []

    retried = await telegram.deliver(update)
    assert retried.status == 200
    [reply] = telegram.messages_to(STRANGER_CHAT)
    assert "Поделиться номером телефона" in (reply.text or "")


async def test_a_malformed_body_is_refused(
    webhook_service: Service, telegram: FakeTelegram
) -> None:
    response = await webhook_service.client.post(
        "/telegram/webhook",
        data=b"not json",
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_json"


async def test_without_a_configured_secret_one_is_derived_from_the_token(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    service = await start_webhook_service(database_url, telegram, sms_gateway)
    try:
        secret = telegram.webhook.secret_token
        assert secret and len(secret) >= 32
        assert telegram.token.split(":")[1] not in secret
        update = telegram.command(STRANGER_CHAT, "/start")
        assert (await telegram.post_webhook(webhook_url(service), update, None)).status == 401
        assert (await telegram.deliver(update)).status == 200
        assert len(telegram.messages_to(STRANGER_CHAT)) == 1
    finally:
        await service.client.close()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_webhook_mode_needs_the_public_url(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    settings = webhook_settings(database_url, telegram, sms_gateway, public_url=None)
    with pytest.raises(ConfigError, match="public_url"):
        create_app(settings)
