"""The real aiogram Bot against FakeTelegram: the fake speaks the Bot API well enough, and each
injected failure makes aiogram raise exactly what it raises against api.telegram.org."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import CommandObject, CommandStart
from aiogram.types import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.fakes.telegram import DEFAULT_TOKEN, FakeTelegram, LoopbackSession

CONFIRM = InlineKeyboardMarkup(
    inline_keyboard=[
        [
            InlineKeyboardButton(text="Отправить", callback_data="confirm:17"),
            InlineKeyboardButton(text="Отменить", callback_data="cancel:17"),
        ]
    ]
)
CONFIRM_JSON = {
    "inline_keyboard": [
        [
            {"text": "Отправить", "callback_data": "confirm:17"},
            {"text": "Отменить", "callback_data": "cancel:17"},
        ]
    ]
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as running:
        yield running


@pytest.fixture
def bot(fake: FakeTelegram) -> Bot:
    return fake.make_bot(timeout=1.0)


async def _raw(
    fake: FakeTelegram, method: str, *, token: str | None = None, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    """One HTTP call to the fake without aiogram (kwargs go to aiohttp's request)."""
    url = f"{fake.base_url}/bot{token or fake.token}/{method}"
    http_method = "GET" if "params" in kwargs and "data" not in kwargs else "POST"
    async with (
        aiohttp.ClientSession() as session,
        session.request(http_method, url, **kwargs) as response,
    ):
        return response.status, await response.json()


# --------------------------------------------------------------------------- basics


async def test_get_me_describes_the_bot(fake: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()

    assert me.id == bot.id == fake.bot_id
    assert me.is_bot
    assert me.username == "vestnik_test_bot"
    assert fake.requests["getMe"] == 1


async def test_production_session_wiring_reaches_the_fake(fake: FakeTelegram) -> None:
    session = AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url), timeout=1)
    production_bot = Bot(fake.token, session=session)
    try:
        assert (await production_bot.get_me()).username == fake.username
    finally:
        await session.close()


async def test_a_wrong_token_is_unauthorized(fake: FakeTelegram) -> None:
    stranger = fake.make_bot("987654321:AAwrong-token-wrong-token-wrong-00")

    with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
        await stranger.get_me()

    status, body = await _raw(fake, "getMe", token="987654321:AAwrong", data={})
    assert status == 401
    assert body == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert fake.requests["getMe"] == 2


async def test_an_unknown_method_is_404(fake: FakeTelegram) -> None:
    status, body = await _raw(fake, "sendTelepathy", json={"chat_id": 1})

    assert status == 404
    assert body == {"ok": False, "error_code": 404, "description": "Not Found: method not found"}


async def test_send_message_round_trip_keeps_cyrillic_and_the_keyboard(
    fake: FakeTelegram, bot: Bot
) -> None:
    text = "Заказ ЗК-000123 готов к выдаче ✅ Сумма: 15 230,50 ₽"

    message = await bot.send_message(4242, text, reply_markup=CONFIRM)

    assert message.chat.id == 4242
    assert message.text == text
    assert message.from_user is not None and message.from_user.id == fake.bot_id
    assert message.reply_markup is not None
    assert message.reply_markup.model_dump(exclude_none=True) == CONFIRM_JSON
    [record] = fake.messages_to(4242)
    assert record.text == text
    assert record.message_id == message.message_id
    assert record.reply_markup == CONFIRM_JSON
    assert record.parse_mode is None
    assert record.method == "sendMessage"
    assert fake.messages_to(1) == []


async def test_message_ids_count_per_chat(bot: Bot) -> None:
    ids = [(await bot.send_message(chat, "x")).message_id for chat in (1, 1, 2, 1)]

    assert ids == [1, 2, 1, 3]


async def test_a_reply_is_recorded_and_echoed(fake: FakeTelegram, bot: Bot) -> None:
    question = fake.message(77, "Где мой заказ?")["message"]

    answer = await bot.send_message(
        77, "Уже едет", reply_parameters=ReplyParameters(message_id=question["message_id"])
    )

    assert answer.reply_to_message is not None
    assert answer.reply_to_message.text == "Где мой заказ?"
    assert fake.messages_to(77)[0].reply_to_message_id == question["message_id"]
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(77, "?", reply_parameters=ReplyParameters(message_id=999))


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(
            {"json": {"chat_id": 5, "text": "Привет", "reply_markup": CONFIRM_JSON}}, id="json"
        ),
        pytest.param(
            {"data": {"chat_id": "5", "text": "Привет", "reply_markup": json.dumps(CONFIRM_JSON)}},
            id="urlencoded",
        ),
        pytest.param(
            {
                "params": {
                    "chat_id": "5",
                    "text": "Привет",
                    "reply_markup": json.dumps(CONFIRM_JSON),
                }
            },
            id="get-query",
        ),
    ],
)
async def test_every_body_encoding_decodes_the_same(
    fake: FakeTelegram, send: dict[str, Any]
) -> None:
    status, body = await _raw(fake, "sendMessage", **send)

    assert status == 200, body
    assert body["ok"] is True
    assert body["result"]["chat"]["id"] == 5
    assert body["result"]["reply_markup"] == CONFIRM_JSON
    [record] = fake.sent
    assert (record.chat_id, record.text, record.reply_markup) == (5, "Привет", CONFIRM_JSON)


async def test_multipart_bodies_decode_json_fields(fake: FakeTelegram) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", "6")
    form.add_field("text", "123")  # a string field stays a string even when it looks numeric
    form.add_field("reply_markup", json.dumps(CONFIRM_JSON), content_type="application/json")
    form.add_field("certificate", b"not used", filename="c.pem")  # forces multipart

    status, body = await _raw(fake, "sendMessage", data=form)

    assert status == 200, body
    [record] = fake.sent
    assert (record.chat_id, record.text, record.reply_markup) == (6, "123", CONFIRM_JSON)


@pytest.mark.parametrize(
    ("kwargs", "description"),
    [
        pytest.param({"text": " "}, "message text is empty", id="empty"),
        pytest.param({"text": "я" * 4097}, "message is too long", id="4097-chars"),
        # 2049 emoji are 4098 UTF-16 code units: Telegram counts those, not characters.
        pytest.param({"text": "😀" * 2049}, "message is too long", id="utf16-units"),
        pytest.param({"text": "x", "parse_mode": "HTMLX"}, "unsupported parse_mode", id="mode"),
        pytest.param(
            {
                "text": "x",
                "reply_markup": InlineKeyboardMarkup(
                    inline_keyboard=[[InlineKeyboardButton(text="b", callback_data="ы" * 33)]]
                ),
            },
            "BUTTON_DATA_INVALID",
            id="callback-data-over-64-bytes",
        ),
    ],
)
async def test_invalid_messages_are_rejected_like_telegram(
    fake: FakeTelegram, bot: Bot, kwargs: dict[str, Any], description: str
) -> None:
    with pytest.raises(TelegramBadRequest, match=description):
        await bot.send_message(1, **kwargs)

    assert fake.sent == []


async def test_the_longest_allowed_text_is_accepted(bot: Bot) -> None:
    message = await bot.send_message(1, "я" * 4096)

    assert len(message.text or "") == 4096


# --------------------------------------------------------------------------- updates


async def test_queued_updates_return_at_once(fake: FakeTelegram, bot: Bot) -> None:
    fake.push_update(fake.message(7, "один"))
    fake.push_update(fake.message(7, "два"))

    started = time.monotonic()
    updates = await bot.get_updates(timeout=5, request_timeout=10)

    assert time.monotonic() - started < 0.5
    assert [u.message.text for u in updates if u.message] == ["один", "два"]


async def test_long_poll_waits_and_wakes_on_push(fake: FakeTelegram, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=5, request_timeout=10))
    await fake.wait_until(lambda: fake.requests["getUpdates"] == 1)
    await asyncio.sleep(0.1)
    assert not poll.done()

    pushed = time.monotonic()
    fake.push_update(fake.message(7, "привет"))
    updates = await asyncio.wait_for(poll, 2)

    assert time.monotonic() - pushed < 0.5
    assert [u.message.text for u in updates if u.message] == ["привет"]


async def test_an_empty_long_poll_lasts_its_timeout(bot: Bot) -> None:
    started = time.monotonic()
    updates = await bot.get_updates(timeout=1, request_timeout=5)

    assert updates == []
    assert 0.9 <= time.monotonic() - started < 2


async def test_stop_ends_a_long_poll_promptly() -> None:
    fake = FakeTelegram()
    await fake.start()
    # Not from make_bot: this session must outlive fake.stop() to see the poll's answer.
    session = LoopbackSession(api=fake.api, timeout=1)
    poller = Bot(fake.token, session=session)
    try:
        poll = asyncio.create_task(poller.get_updates(timeout=30, request_timeout=60))
        await fake.wait_until(lambda: fake.requests["getUpdates"] == 1)

        stopping = time.monotonic()
        await fake.stop()
        updates = await asyncio.wait_for(poll, 2)

        assert updates == []
        assert time.monotonic() - stopping < 1
    finally:
        await session.close()


async def test_offset_acknowledges_and_unacknowledged_updates_come_again(
    fake: FakeTelegram, bot: Bot
) -> None:
    for text in ("a", "b", "c"):
        fake.push_update(fake.message(7, text))

    first = await bot.get_updates()
    again = await bot.get_updates()
    assert [u.update_id for u in again] == [u.update_id for u in first]
    assert len(first) == 3

    # An offset confirms every update below it and returns the rest.
    partial = await bot.get_updates(offset=first[1].update_id)
    assert [u.update_id for u in partial] == [first[1].update_id, first[2].update_id]

    assert await bot.get_updates(offset=first[-1].update_id + 1) == []
    assert fake.pending_updates == 0


async def test_negative_offset_and_limit(fake: FakeTelegram, bot: Bot) -> None:
    pushed = [fake.push_update(fake.message(7, text)) for text in ("a", "b", "c")]

    assert [u.update_id for u in await bot.get_updates(limit=2)] == [
        pushed[0]["update_id"],
        pushed[1]["update_id"],
    ]
    assert [u.update_id for u in await bot.get_updates(offset=-1)] == [pushed[2]["update_id"]]
    assert fake.pending_updates == 1


async def test_allowed_updates_filter(fake: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(7, "Подтвердите?", reply_markup=CONFIRM)
    fake.push_update(fake.message(7, "текст"))
    fake.push_update(fake.callback_query(7, "confirm:17", message_id=sent.message_id))

    updates = await bot.get_updates(allowed_updates=["callback_query"])

    assert [u.event_type for u in updates] == ["callback_query"]


async def test_a_newer_poll_terminates_the_older(fake: FakeTelegram, bot: Bot) -> None:
    older = asyncio.create_task(bot.get_updates(timeout=5, request_timeout=10))
    await fake.wait_until(lambda: fake.requests["getUpdates"] == 1)

    assert await bot.get_updates(timeout=0) == []
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await asyncio.wait_for(older, 2)


async def test_builders_make_updates_aiogram_parses(fake: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(7, "Подтвердите отправку", reply_markup=CONFIRM)
    fake.push_update(fake.command(7, "/start", "tok_AbC-123"))
    fake.push_update(fake.contact(7, "79161234567", user_id=99, from_id=7))
    fake.push_update(fake.contact(8, "+79031234567"))
    fake.push_update(fake.callback_query(7, "confirm:17", message_id=sent.message_id))
    fake.push_update(fake.my_chat_member(7, "member", "kicked"))
    fake.push_update(fake.message(7, "ответ", reply_to=sent.message_id))

    start, spoofed, own, press, member, reply = await bot.get_updates()

    assert start.message is not None and start.message.text == "/start tok_AbC-123"
    assert start.message.entities is not None
    assert start.message.entities[0].type == "bot_command"
    assert start.message.entities[0].length == len("/start")
    assert spoofed.message is not None and spoofed.message.contact is not None
    assert spoofed.message.contact.user_id == 99
    assert spoofed.message.from_user is not None and spoofed.message.from_user.id == 7
    assert own.message is not None and own.message.contact is not None
    assert own.message.from_user is not None
    assert own.message.contact.user_id == own.message.from_user.id == 8
    assert press.callback_query is not None and press.callback_query.data == "confirm:17"
    assert press.callback_query.from_user.id == 7
    pressed_on = press.callback_query.message
    assert isinstance(pressed_on, Message)
    assert pressed_on.message_id == sent.message_id
    assert pressed_on.reply_markup is not None
    assert pressed_on.reply_markup.model_dump(exclude_none=True) == CONFIRM_JSON
    assert member.my_chat_member is not None
    assert member.my_chat_member.old_chat_member.status == "member"
    assert member.my_chat_member.new_chat_member.status == "kicked"
    assert reply.message is not None and reply.message.reply_to_message is not None
    assert reply.message.reply_to_message.message_id == sent.message_id
    ids = [start.update_id, spoofed.update_id, press.update_id, reply.update_id]
    assert ids == sorted(set(ids))


async def test_dispatcher_polling_answers_commands_and_buttons(
    fake: FakeTelegram, bot: Bot
) -> None:
    dp = Dispatcher()

    @dp.message(CommandStart())
    async def on_start(message: Message, command: CommandObject) -> None:
        await message.answer(f"Привет! payload={command.args}", reply_markup=CONFIRM)

    @dp.callback_query(F.data.startswith("confirm:"))
    async def on_confirm(query: CallbackQuery) -> None:
        await query.answer("Отправлено")
        assert isinstance(query.message, Message)
        await query.message.edit_text("Подтверждено")

    polling = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, close_bot_session=False, polling_timeout=1)
    )
    try:
        fake.push_update(fake.command(7, "/start", "tok"))
        [greeting] = await fake.wait_for_sent(7, timeout=3)
        assert greeting.text == "Привет! payload=tok"

        fake.push_update(fake.callback_query(7, "confirm:17", message_id=greeting.message_id))
        await fake.wait_until(lambda: len(fake.edits) == 1, timeout=3)
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(polling, 3)

    assert [a.text for a in fake.callback_answers] == ["Отправлено"]
    assert fake.edits[0].text == "Подтверждено"
    stored = fake.stored_message(7, greeting.message_id)
    assert stored is not None and "reply_markup" not in stored


# --------------------------------------------------------------------------- webhook


async def test_set_webhook_is_recorded_and_blocks_polling(fake: FakeTelegram, bot: Bot) -> None:
    fake.push_update(fake.message(7, "old"))

    assert await bot.set_webhook(
        "https://vestnik.example/telegram/webhook",
        secret_token="s3cret_TOKEN-1",
        drop_pending_updates=True,
        allowed_updates=["message", "callback_query", "my_chat_member"],
    )

    assert fake.webhook.url == "https://vestnik.example/telegram/webhook"
    assert fake.webhook.secret_token == "s3cret_TOKEN-1"
    assert fake.webhook.drop_pending_updates is True
    assert fake.webhook.allowed_updates == ["message", "callback_query", "my_chat_member"]
    assert fake.pending_updates == 0
    info = await bot.get_webhook_info()
    assert info.url == fake.webhook.url
    assert info.pending_update_count == 0
    with pytest.raises(TelegramConflictError, match="webhook is active"):
        await bot.get_updates()

    assert await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""
    assert await bot.get_updates() == []


async def test_set_webhook_rejects_a_bad_secret(fake: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="secret token contains unallowed characters"):
        await bot.set_webhook("https://vestnik.example/hook", secret_token="no spaces!")

    assert fake.webhook.url == ""


@pytest.mark.parametrize("in_background", [True, False])
async def test_post_webhook_feeds_the_bot_like_telegram(
    fake: FakeTelegram, bot: Bot, in_background: bool
) -> None:
    dp = Dispatcher()

    @dp.message(CommandStart())
    async def on_start(message: Message) -> Any:
        if in_background:
            await message.answer("Здравствуйте")
            return None
        return message.answer("Здравствуйте")  # a method in the webhook reply

    app = web.Application()
    SimpleRequestHandler(
        dp, bot, secret_token="s3cret", handle_in_background=in_background
    ).register(app, path="/telegram/webhook")
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("/telegram/webhook"))
        await bot.set_webhook(url, secret_token="s3cret")

        refused = await fake.post_webhook(url, fake.command(7, "/start"), secret_token="wrong")
        assert refused.status == 401

        delivery = await fake.deliver(fake.command(7, "/start"))
        assert delivery.status == 200
        [answer] = await fake.wait_for_sent(7, timeout=2)
        assert answer.text == "Здравствуйте"
        assert delivery.method == (None if in_background else "sendMessage")
    finally:
        await server.close()


# --------------------------------------------------------------------------- other methods


async def test_edits_callback_answers_and_deletes(fake: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(7, "Подтвердите", reply_markup=CONFIRM)
    query = fake.callback_query(7, "confirm:17", message_id=sent.message_id)["callback_query"]

    assert await bot.answer_callback_query(query["id"], text="Принято", show_alert=True)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query["id"])
    assert [(a.text, a.show_alert) for a in fake.callback_answers] == [("Принято", True)]

    edited = await bot.edit_message_text("Отправлено", chat_id=7, message_id=sent.message_id)
    assert isinstance(edited, Message)
    assert edited.text == "Отправлено"
    assert edited.reply_markup is None  # editing the text without a markup drops the buttons
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("Отправлено", chat_id=7, message_id=sent.message_id)
    await bot.edit_message_reply_markup(
        chat_id=7, message_id=sent.message_id, reply_markup=CONFIRM
    )
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=7, message_id=999)
    assert [(e.method, e.message_id) for e in fake.edits] == [
        ("editMessageText", sent.message_id),
        ("editMessageReplyMarkup", sent.message_id),
    ]
    stored = fake.stored_message(7, sent.message_id)
    assert stored is not None and stored["reply_markup"] == CONFIRM_JSON

    assert await bot.delete_message(7, sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(7, sent.message_id)
    assert fake.deleted == [(7, sent.message_id)]


async def test_copy_and_forward_relay_a_client_message(fake: FakeTelegram, bot: Bot) -> None:
    incoming = fake.message(7, "Где мой заказ ЗК-000123?")["message"]

    copied = await bot.copy_message(500, from_chat_id=7, message_id=incoming["message_id"])
    forwarded = await bot.forward_message(500, from_chat_id=7, message_id=incoming["message_id"])

    copy_record, forward_record = fake.messages_to(500)
    assert (copy_record.method, copy_record.text) == ("copyMessage", "Где мой заказ ЗК-000123?")
    assert copy_record.message_id == copied.message_id
    assert forward_record.method == "forwardMessage"
    assert forwarded.text == "Где мой заказ ЗК-000123?"
    assert forwarded.forward_origin is not None
    assert forwarded.forward_origin.sender_user.id == 7  # type: ignore[union-attr]
    with pytest.raises(TelegramBadRequest, match="message to copy not found"):
        await bot.copy_message(500, from_chat_id=7, message_id=999)


async def test_chat_action_commands_files_and_harmless_calls(fake: FakeTelegram, bot: Bot) -> None:
    assert await bot.send_chat_action(7, "typing")
    commands = [BotCommand(command="journal", description="Журнал уведомлений")]
    assert await bot.set_my_commands(commands)
    assert [c.model_dump(exclude_none=True) for c in await bot.get_my_commands()] == [
        {"command": "journal", "description": "Журнал уведомлений"}
    ]
    file_id = fake.add_file("квитанция".encode(), file_path="documents/receipt.txt")
    file = await bot.get_file(file_id)
    assert file.file_path is not None
    downloaded = await bot.download_file(file.file_path)
    assert downloaded is not None and downloaded.read().decode() == "квитанция"
    assert await bot.close()
    assert await bot.log_out()

    assert fake.chat_actions == [(7, "typing")]
    assert fake.commands_for() == [{"command": "journal", "description": "Журнал уведомлений"}]


# --------------------------------------------------------------------------- injection


@pytest.mark.parametrize(
    ("error", "options", "expected", "text"),
    [
        (
            "retry_after",
            {"retry_after": 7},
            TelegramRetryAfter,
            "Too Many Requests: retry after 7",
        ),
        ("blocked", {}, TelegramForbiddenError, "Forbidden: bot was blocked by the user"),
        ("chat_not_found", {}, TelegramBadRequest, "Bad Request: chat not found"),
        (
            "bad_request",
            {"description": "Bad Request: can't parse entities"},
            TelegramBadRequest,
            "can't parse entities",
        ),
        ("server_error", {}, TelegramServerError, "Internal Server Error"),
        ("bad_gateway", {}, TelegramServerError, "Bad Gateway"),
        ("unauthorized", {}, TelegramUnauthorizedError, "Unauthorized"),
        ("migrated", {"migrate_to_chat_id": -100555}, TelegramMigrateToChat, "supergroup"),
        ("timeout", {}, TelegramNetworkError, "Request timeout error"),
        ("proxy_html", {}, ClientDecodeError, "502 Bad Gateway"),
    ],
)
async def test_each_injected_error_raises_what_aiogram_raises(
    fake: FakeTelegram,
    error: Any,
    options: dict[str, Any],
    expected: type[Exception],
    text: str,
) -> None:
    quick = fake.make_bot(timeout=0.3)
    fake.fail_next("sendMessage", error=error, **options)

    with pytest.raises(expected, match=text) as raised:
        await quick.send_message(42, "Заказ готов")

    assert type(raised.value) is expected
    if isinstance(raised.value, TelegramRetryAfter):
        assert raised.value.retry_after == 7
    if isinstance(raised.value, TelegramMigrateToChat):
        assert raised.value.migrate_to_chat_id == -100555
    # The injection is used up: the next send goes through.
    assert (await quick.send_message(42, "Заказ готов")).text == "Заказ готов"


async def test_a_timed_out_send_may_still_be_delivered(fake: FakeTelegram) -> None:
    quick = fake.make_bot(timeout=0.2)
    fake.fail_next("sendMessage", error="timeout", hold=0.4)

    with pytest.raises(TelegramNetworkError):
        await quick.send_message(42, "дубль?")

    [late] = await fake.wait_for_sent(42, timeout=2)
    assert late.text == "дубль?"


async def test_fail_next_targets_one_chat_a_number_of_times(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("sendMessage", chat_id=2, times=2, error="server_error")

    await bot.send_message(1, "ok")
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot.send_message(2, "x")
    await bot.send_message(2, "ok")

    assert [m.chat_id for m in fake.sent] == [1, 2]
    assert fake.requests["sendMessage"] == 4


async def test_blocked_chat_gets_403_until_unblocked(fake: FakeTelegram, bot: Bot) -> None:
    fake.block(9)

    for _ in range(2):
        with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
            await bot.send_message(9, "x")
    await bot.send_message(10, "other chats are fine")
    fake.unblock(9)
    await bot.send_message(9, "back")

    assert [(m.chat_id, m.text) for m in fake.sent] == [(10, "other chats are fine"), (9, "back")]


async def test_strict_chats_know_only_users_who_wrote(fake: FakeTelegram, bot: Bot) -> None:
    fake.strict_chats = True

    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(77, "x")
    fake.message(77, "/start")
    await bot.send_message(77, "x")

    assert len(fake.messages_to(77)) == 1


async def test_latency_delays_every_request(fake: FakeTelegram, bot: Bot) -> None:
    fake.latency = 0.2

    started = time.monotonic()
    await bot.get_me()

    assert time.monotonic() - started >= 0.2


async def test_wait_for_sent_returns_when_messages_arrive(fake: FakeTelegram, bot: Bot) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        await bot.send_message(3, "один")
        await bot.send_message(3, "два")

    task = asyncio.create_task(later())
    messages = await fake.wait_for_sent(3, count=2, timeout=2)
    await task

    assert [m.text for m in messages] == ["один", "два"]
    with pytest.raises(TimeoutError, match=r"expected 3 message\(s\) to chat 3"):
        await fake.wait_for_sent(3, count=3, timeout=0.1)


# --------------------------------------------------------------------------- rate limits


async def test_per_chat_rate_limit_answers_429(fake: FakeTelegram, bot: Bot) -> None:
    fake.per_chat_per_second = 1

    await bot.send_message(5, "first")
    with pytest.raises(TelegramRetryAfter) as raised:
        await bot.send_message(5, "second")
    await bot.send_message(6, "another chat")

    assert raised.value.retry_after == 1
    assert fake.rejected_429 == 1
    assert [m.text for m in fake.messages_to(5)] == ["first"]


async def test_per_bot_rate_limit_answers_429(fake: FakeTelegram, bot: Bot) -> None:
    fake.per_second = 3

    results = await asyncio.gather(
        *(bot.send_message(chat, "x") for chat in range(1, 6)), return_exceptions=True
    )

    assert sum(isinstance(r, Message) for r in results) == 3
    assert sum(isinstance(r, TelegramRetryAfter) for r in results) == 2
    assert fake.rejected_429 == 2
    assert len(fake.sent) == 3


async def test_rate_window_slides_with_the_clock() -> None:
    now = [1000.0]
    async with FakeTelegram(per_chat_per_second=1, clock=lambda: now[0]) as fake:
        bot = fake.make_bot(timeout=1)
        await bot.send_message(5, "a")
        now[0] += 0.5
        with pytest.raises(TelegramRetryAfter):
            await bot.send_message(5, "b")
        now[0] += 0.6
        await bot.send_message(5, "c")

        assert [m.text for m in fake.messages_to(5)] == ["a", "c"]
        assert [m.time for m in fake.sent] == [1000.0, 1001.1]


async def test_every_error_is_a_telegram_api_error_except_decode(fake: FakeTelegram) -> None:
    """aiogram's hierarchy the channel relies on: all API errors share TelegramAPIError, while
    an undecodable body is a ClientDecodeError outside it."""
    quick = fake.make_bot(timeout=0.3)
    fake.fail_next("sendMessage", error="blocked")
    fake.fail_next("sendMessage", error="proxy_html")

    with pytest.raises(TelegramAPIError):
        await quick.send_message(1, "x")
    with pytest.raises(ClientDecodeError) as raised:
        await quick.send_message(1, "x")
    assert not isinstance(raised.value, TelegramAPIError)


def test_the_default_token_is_valid_for_aiogram() -> None:
    assert Bot(DEFAULT_TOKEN).id == int(DEFAULT_TOKEN.split(":")[0])
