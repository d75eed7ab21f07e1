"""TelegramChannel against FakeTelegram: every way a send can end becomes the right Outcome,
and nothing but cancellation escapes as an exception."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramNotFound
from aiogram.methods import Response, SendMessage, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from dispatch.delivery.channels.outcome import ErrorKind, Outcome, OutcomeKind
from dispatch.delivery.channels.telegram import AUTH_RETRY_AFTER, TelegramChannel
from tests.fakes.telegram import FakeTelegram, LoopbackSession


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as running:
        yield running


@pytest.fixture
def bot(fake: FakeTelegram) -> Bot:
    # A short request timeout keeps the "timeout" case fast.
    return fake.make_bot(timeout=0.3)


@pytest.fixture
def channel(bot: Bot) -> TelegramChannel:
    return TelegramChannel(bot)


class _Raising(BaseRequestMiddleware):
    """An aiogram request middleware that fails every call before it reaches the network."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        raise self.exc


async def test_a_send_is_plain_text_without_preview(fake: FakeTelegram) -> None:
    # A Bot whose defaults would turn on HTML and previews: the channel overrides both.
    bot = fake.make_bot(
        default=DefaultBotProperties(parse_mode="HTML", link_preview_is_disabled=False)
    )
    text = "<b>Заказ</b> ЗК-000123 готов: https://example.com/orders/123 *срочно*"

    outcome = await TelegramChannel(bot).send(4242, text)

    [record] = fake.messages_to(4242)
    assert outcome == Outcome.sent(provider_message_id=str(record.message_id))
    assert record.text == text
    assert record.parse_mode is None
    assert "parse_mode" not in record.params
    assert record.link_preview_options == {"is_disabled": True}
    assert record.reply_markup is None


async def test_the_keyboard_goes_with_the_message(
    fake: FakeTelegram, channel: TelegramChannel
) -> None:
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Отправить", callback_data="confirm:17")]]
    )

    outcome = await channel.send(7, "Отправить клиенту?", reply_markup=keyboard)

    assert outcome.kind is OutcomeKind.SENT
    assert fake.messages_to(7)[0].reply_markup == {
        "inline_keyboard": [[{"text": "Отправить", "callback_data": "confirm:17"}]]
    }


async def test_provider_message_ids_follow_telegram(channel: TelegramChannel) -> None:
    outcomes = [await channel.send(7, f"#{n}") for n in range(3)]

    assert [o.provider_message_id for o in outcomes] == ["1", "2", "3"]


@pytest.mark.parametrize(
    ("injected", "kind", "error", "retry_after", "pause"),
    [
        pytest.param(
            {"error": "retry_after", "retry_after": 5},
            OutcomeKind.RETRY,
            ErrorKind.RATE_LIMIT,
            5.0,
            True,
            id="429",
        ),
        pytest.param({"error": "blocked"}, OutcomeKind.BLOCKED, ErrorKind.BLOCKED, None, False),
        pytest.param(
            {"error": "blocked", "description": "Forbidden: user is deactivated"},
            OutcomeKind.BLOCKED,
            ErrorKind.BLOCKED,
            None,
            False,
            id="deactivated",
        ),
        pytest.param(
            {
                "error": "blocked",
                "description": "Forbidden: bot can't initiate conversation with a user",
            },
            OutcomeKind.BLOCKED,
            ErrorKind.BLOCKED,
            None,
            False,
            id="never-started",
        ),
        pytest.param(
            {"error": "chat_not_found"},
            OutcomeKind.PERMANENT,
            ErrorKind.CHAT_NOT_FOUND,
            None,
            False,
            id="chat-not-found",
        ),
        pytest.param(
            {"error": "bad_request", "description": "Bad Request: user not found"},
            OutcomeKind.PERMANENT,
            ErrorKind.CHAT_NOT_FOUND,
            None,
            False,
            id="user-not-found",
        ),
        pytest.param(
            {"error": "bad_request", "description": "Bad Request: PEER_ID_INVALID"},
            OutcomeKind.PERMANENT,
            ErrorKind.CHAT_NOT_FOUND,
            None,
            False,
            id="peer-id-invalid",
        ),
        pytest.param(
            {"error": "migrated"},
            OutcomeKind.PERMANENT,
            ErrorKind.CHAT_NOT_FOUND,
            None,
            False,
            id="migrated-group",
        ),
        pytest.param(
            {"error": "bad_request"},
            OutcomeKind.PERMANENT,
            ErrorKind.BAD_REQUEST,
            None,
            False,
            id="too-long",
        ),
        pytest.param(
            {"error": "bad_request", "description": "Bad Request: can't parse entities"},
            OutcomeKind.PERMANENT,
            ErrorKind.BAD_REQUEST,
            None,
            False,
            id="entities",
        ),
        pytest.param(
            {"error": "unauthorized"},
            OutcomeKind.RETRY,
            ErrorKind.AUTH,
            AUTH_RETRY_AFTER,
            True,
            id="401",
        ),
        pytest.param(
            {"error": "server_error"},
            OutcomeKind.RETRY,
            ErrorKind.TRANSIENT,
            None,
            False,
            id="500",
        ),
        pytest.param(
            {"error": "bad_gateway"}, OutcomeKind.RETRY, ErrorKind.TRANSIENT, None, False, id="502"
        ),
        pytest.param(
            {"error": "proxy_html"},
            OutcomeKind.RETRY,
            ErrorKind.TRANSIENT,
            None,
            False,
            id="html-502",
        ),
        pytest.param(
            {"error": "timeout"}, OutcomeKind.RETRY, ErrorKind.TRANSIENT, None, False, id="timeout"
        ),
    ],
)
async def test_each_api_failure_maps_to_its_outcome(
    fake: FakeTelegram,
    channel: TelegramChannel,
    injected: dict[str, Any],
    kind: OutcomeKind,
    error: ErrorKind,
    retry_after: float | None,
    pause: bool,
) -> None:
    fake.fail_next("sendMessage", chat_id=42, **injected)

    outcome = await channel.send(42, "Заказ готов к выдаче")

    assert (outcome.kind, outcome.error) == (kind, error)
    assert outcome.retry_after == retry_after
    assert outcome.pause_channel is pause
    assert outcome.provider_message_id is None
    assert outcome.reason
    assert fake.sent == []
    # The failure was one call's: the channel is usable at once.
    assert (await channel.send(42, "again")).kind is OutcomeKind.SENT


async def test_a_blocked_chat_is_blocked_until_unblocked(
    fake: FakeTelegram, channel: TelegramChannel
) -> None:
    fake.block(9)

    assert (await channel.send(9, "x")).kind is OutcomeKind.BLOCKED
    assert (await channel.send(10, "x")).kind is OutcomeKind.SENT
    fake.unblock(9)
    assert (await channel.send(9, "x")).kind is OutcomeKind.SENT


async def test_a_text_telegram_refuses_is_permanent(channel: TelegramChannel) -> None:
    outcome = await channel.send(1, "я" * 4097)

    assert (outcome.kind, outcome.error) == (OutcomeKind.PERMANENT, ErrorKind.BAD_REQUEST)
    assert "message is too long" in outcome.reason


async def test_an_unreachable_api_is_transient(fake: FakeTelegram) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    session = LoopbackSession(
        api=type(fake.api).from_base(f"http://127.0.0.1:{closed_port}"), timeout=0.5
    )
    bot = Bot(fake.token, session=session)
    try:
        outcome = await TelegramChannel(bot).send(1, "x")
    finally:
        await session.close()

    assert (outcome.kind, outcome.error) == (OutcomeKind.RETRY, ErrorKind.TRANSIENT)
    assert fake.token not in outcome.reason


@pytest.mark.parametrize(
    ("exc", "reason_start"),
    [
        pytest.param(TimeoutError(), "TimeoutError", id="asyncio-timeout"),
        pytest.param(aiohttp.ServerDisconnectedError(), "ServerDisconnectedError", id="aiohttp"),
        pytest.param(
            TelegramNotFound(method=SendMessage(chat_id=1, text="x"), message="Not Found"),
            "unexpected TelegramNotFound",
            id="404",
        ),
        pytest.param(RuntimeError("boom"), "unexpected RuntimeError", id="bug"),
    ],
)
async def test_other_exceptions_are_transient_retries(
    bot: Bot, channel: TelegramChannel, exc: Exception, reason_start: str
) -> None:
    bot.session.middleware(_Raising(exc))

    outcome = await channel.send(1, "x")

    assert (outcome.kind, outcome.error) == (OutcomeKind.RETRY, ErrorKind.TRANSIENT)
    assert outcome.retry_after is None
    assert outcome.reason.startswith(reason_start)


async def test_the_token_never_reaches_reasons_or_logs(
    fake: FakeTelegram, bot: Bot, channel: TelegramChannel, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{fake.base_url}/bot{fake.token}/sendMessage"
    bot.session.middleware(_Raising(RuntimeError(f"cannot POST {url}")))
    caplog.set_level(logging.DEBUG, logger="dispatch.delivery.channels.telegram")

    outcome = await channel.send(1, "x")

    assert outcome.reason.startswith("unexpected RuntimeError")
    assert "/bot<token>/sendMessage" in outcome.reason
    assert fake.token not in outcome.reason
    assert fake.token.split(":")[1] not in caplog.text
    assert "/bot<token>/sendMessage" in caplog.text
    # The unexpected failure is logged with its traceback, the known ones are not.
    assert any(
        r.levelno == logging.ERROR and "Traceback" in r.getMessage() for r in caplog.records
    )


async def test_known_failures_log_a_warning_without_traceback(
    fake: FakeTelegram, channel: TelegramChannel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="dispatch.delivery.channels.telegram")
    fake.fail_next("sendMessage", error="blocked")

    await channel.send(9, "x")

    [record] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.levelno == logging.WARNING
    assert "chat 9" in record.getMessage()
    assert "blocked" in record.getMessage()
    assert "Traceback" not in caplog.text


async def test_cancellation_propagates(fake: FakeTelegram) -> None:
    patient = TelegramChannel(fake.make_bot(timeout=10))
    fake.fail_next("sendMessage", error="timeout", hold=10)

    send = asyncio.create_task(patient.send(1, "x"))
    await fake.wait_until(lambda: fake.requests["sendMessage"] == 1)
    send.cancel()

    with pytest.raises(asyncio.CancelledError):
        await send


async def test_me_reads_the_username_once(fake: FakeTelegram, channel: TelegramChannel) -> None:
    assert await channel.me() == "vestnik_test_bot"
    assert await channel.me() == "vestnik_test_bot"

    assert fake.requests["getMe"] == 1


async def test_a_burst_beyond_the_limits_becomes_retry_outcomes(fake: FakeTelegram) -> None:
    """Ten sends at once against 5/s per bot and 1/s per chat: exactly five get through
    (one of them to chat 1), the rest come back as rate-limit retries with retry_after."""
    fake.per_second = 5
    fake.per_chat_per_second = 1
    channel = TelegramChannel(fake.make_bot(timeout=2))
    chats = [1, 1, 1, 2, 3, 4, 5, 6, 7, 8]

    outcomes = await asyncio.gather(*(channel.send(chat, "Заказ готов") for chat in chats))

    sent = [o for o in outcomes if o.kind is OutcomeKind.SENT]
    retries = [o for o in outcomes if o.kind is OutcomeKind.RETRY]
    assert len(sent) == 5
    assert len(retries) == 5 == fake.rejected_429
    assert all(o.error is ErrorKind.RATE_LIMIT for o in retries)
    assert all(o.retry_after is not None and o.retry_after >= 1 for o in retries)
    assert all(o.pause_channel for o in retries)
    assert len(fake.sent) == 5
    assert len(fake.messages_to(1)) == 1
    assert {o.provider_message_id for o in sent} <= {str(m.message_id) for m in fake.sent}
