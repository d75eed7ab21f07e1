"""Logs: readable or JSON lines, context ids on every line, no phone number or secret ever."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.logs import (
    REQUEST_ID,
    REQUEST_ID_HEADER,
    RedactingFilter,
    Redactor,
    RefusalRateLimit,
    bind_log_context,
    configure_logging,
    current_log_context,
    log_context,
    mask_phones,
    request_id_middleware,
    secrets_from_settings,
    unbind_log_context,
    update_log_middleware,
)
from bot.settings import Settings

PHONE_DIGITS = "9161234567"
MASKED = "+7916***4567"
# An unconfigured token of the shape @BotFather hands out.
STRAY_BOT_TOKEN = "7654321098:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"

SECRETS = {
    "webhook": "erp-hmac-secret-0f9e8d",
    "admin": "admin-bearer-token-77aa",
    "telegram": "123456789:AAF4k3-T0k3n_for_Vestnik_logs_tests00",
    "telegram_webhook": "tg-webhook-secret-5c4b",
    "smtp": "smtp-p@ss/word+1",
    "sms_password": "smsc-password-9x8y",
    "sms_api_key": "smsru-api-key-3c2b1a",
    "sms_token": "gateway-token-6f5e",
    "database": "pg-pa55word-q1w2",
    "desk": "desk-cookie-key-8d7c6b",
    "erp_callback": "erp-callback-secret-4e3d2c",
}


def _settings() -> Settings:
    return Settings.load(
        webhook={"secret": SECRETS["webhook"]},
        admin={"token": SECRETS["admin"]},
        telegram={"token": SECRETS["telegram"], "webhook_secret": SECRETS["telegram_webhook"]},
        smtp={"host": "smtp.example.com", "username": "u", "password": SECRETS["smtp"]},
        desk={"secret": SECRETS["desk"]},
        erp={
            "callback_url": "https://erp.example/press",
            "callback_secret": SECRETS["erp_callback"],
        },
        sms_services=[
            {"name": "a", "kind": "smsc", "login": "l", "password": SECRETS["sms_password"]},
            {"name": "b", "kind": "smsru", "api_key": SECRETS["sms_api_key"]},
            {"name": "c", "kind": "http", "base_url": "http://x", "token": SECRETS["sms_token"]},
        ],
        database={"url": f"postgresql+asyncpg://vestnik:{SECRETS['database']}@db:5432/vestnik"},
    )


@pytest.fixture
def capture() -> Iterator[Callable[..., io.StringIO]]:
    """configure_logging into a string; the root logger is restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level

    def configure(fmt: str = "text", **kwargs: Any) -> io.StringIO:
        stream = io.StringIO()
        configure_logging("DEBUG", fmt, stream=stream, **kwargs)
        return stream

    yield configure
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def _log_everything_with(logger: logging.Logger, value: str) -> None:
    """`value` in the message, in args, in an extra field, and in an exception."""
    logger.info(f"in the message: {value}")
    logger.warning("in the args: %s (%d)", value, 1)
    logger.info("in extra fields", extra={"phone": value, "payload": {"to": [value]}})
    try:
        raise ValueError(f"provider refused {value}")
    except ValueError:
        logger.exception("in the exception")


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize(
    "phone",
    ["+79161234567", "+7 916 123-45-67", "8 (916) 123-45-67", "89161234567", "8-916-123-45-67"],
)
def test_no_full_phone_number_in_any_part_of_a_record(
    capture: Callable[..., io.StringIO], fmt: str, phone: str
) -> None:
    stream = capture(fmt)
    _log_everything_with(logging.getLogger("vestnik.test"), phone)
    output = stream.getvalue()
    lines = output.splitlines()
    assert len([line for line in lines if "in the" in line or "extra" in line]) == 4
    assert PHONE_DIGITS not in _digits(output), output
    assert phone not in output
    assert MASKED in output
    if fmt == "json":
        records = [json.loads(line) for line in lines if line.startswith("{")]
        assert records[2]["phone"] == MASKED
        assert records[2]["payload"] == {"to": [MASKED]}
        assert "ValueError: provider refused +7916***4567" in records[3]["exc"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call +7 916 123-45-67 now", "call +7916***4567 now"),
        ("call 8 (916) 123-45-67.", "call +7916***4567."),
        ("to 89161234567,", "to +7916***4567,"),
        ("to 79161234567", "to +7916***4567"),
        ("uk +44 20 7946 0958", "uk +4420***0958"),
        ('{"phone": "+380501234567"}', '{"phone": "+3805***4567"}'),
    ],
)
def test_phone_formats_are_masked_like_mask_phone(text: str, expected: str) -> None:
    assert mask_phones(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-27 10:15:00,123 notification 42 chat 123456789 update 100001",
        "request 0f3c9a1e89161234567b2d4e6f8a0c1e",  # digits inside an id are not a phone
        "amount 15230.50 RUB, order ЗК-000123, time 2026-11-27T10:15:00+03:00",
        "supergroup -1001234567890",
    ],
)
def test_text_without_phones_is_left_alone(text: str) -> None:
    assert mask_phones(text) == text


def test_secrets_from_settings_finds_every_secret() -> None:
    found = set(secrets_from_settings(_settings()))
    assert set(SECRETS.values()) <= found


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_and_bot_tokens_never_appear(
    capture: Callable[..., io.StringIO], fmt: str
) -> None:
    settings = _settings()
    stream = capture(fmt, secrets=secrets_from_settings(settings))
    logger = logging.getLogger("aiogram.event")  # any logger, not only ours
    for secret in SECRETS.values():
        _log_everything_with(logger, secret)
    _log_everything_with(logger, f"https://api.telegram.org/bot{STRAY_BOT_TOKEN}/getMe")
    logger.info("query psw=%s", "smtp-p%40ss%2Fword%2B1")  # the URL-encoded SMTP password
    logger.info("engine %s", "postgresql://someone:hunter22@other-host/db")
    output = stream.getvalue()
    for secret in [*SECRETS.values(), STRAY_BOT_TOKEN, "smtp-p%40ss%2Fword%2B1", "hunter22"]:
        assert secret not in output
    # The part of a token after the colon is the secret part.
    assert STRAY_BOT_TOKEN.split(":")[1] not in output
    assert "***" in output
    assert "postgresql://someone:***@other-host/db" in output
    assert "https://api.telegram.org/bot***/getMe" in output


def test_configure_logging_stays_compatible_without_secrets(
    capture: Callable[..., io.StringIO],
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:]
    stream = io.StringIO()
    try:
        configure_logging("WARNING", "text")  # the old positional signature
        assert len(root.handlers) == 1
        assert root.level == logging.WARNING
    finally:
        root.handlers[:] = saved
    stream = capture("text")
    logging.getLogger("vestnik").info("token %s", STRAY_BOT_TOKEN)
    assert STRAY_BOT_TOKEN not in stream.getvalue()


def test_json_lines_parse_and_carry_the_context(capture: Callable[..., io.StringIO]) -> None:
    stream = capture("json")
    logger = logging.getLogger("vestnik.erp")
    with log_context(request_id="req-1"):
        logger.info("accepted %s", "erp-7f3a", extra={"event_type": "client_order.ready"})
        with log_context(update_id=100001):
            logger.warning("inside an update")
    logger.info("outside")
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [record["message"] for record in records] == [
        "accepted erp-7f3a",
        "inside an update",
        "outside",
    ]
    assert records[0]["request_id"] == "req-1"
    assert records[0]["event_type"] == "client_order.ready"
    assert records[0]["level"] == "INFO"
    assert records[0]["logger"] == "vestnik.erp"
    assert records[1]["request_id"] == "req-1"
    assert records[1]["update_id"] == "100001"
    assert "request_id" not in records[2]
    assert "update_id" not in records[2]


def test_text_lines_carry_the_context(capture: Callable[..., io.StringIO]) -> None:
    stream = capture("text")
    token = bind_log_context(request_id="abc123", update_id=None)
    try:
        logging.getLogger("vestnik.erp").info("hello")
    finally:
        unbind_log_context(token)
    logging.getLogger("vestnik.erp").info("bye")
    first, second = stream.getvalue().splitlines()
    assert first.endswith("vestnik.erp [request_id=abc123]: hello")
    assert second.endswith("vestnik.erp: bye")
    assert current_log_context() == {}


async def _app_client(logger: logging.Logger) -> TestClient[Any, Any]:
    async def hello(request: web.Request) -> web.Response:
        logger.info("handling %s", request.path)
        return web.json_response({"request_id": request[REQUEST_ID]})

    async def gone(request: web.Request) -> web.Response:
        raise web.HTTPGone()

    app = web.Application(middlewares=[request_id_middleware()])
    app.router.add_get("/hello", hello)
    app.router.add_get("/gone", gone)
    client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


async def test_request_id_middleware_takes_makes_and_echoes_the_id(
    capture: Callable[..., io.StringIO],
) -> None:
    stream = capture("json")
    client = await _app_client(logging.getLogger("vestnik.http"))
    try:
        given = await client.get("/hello", headers={REQUEST_ID_HEADER: "erp-req-42"})
        given_body = await given.json()
        made = await client.get("/hello")
        made_body = await made.json()
        refused = await client.get("/hello", headers={REQUEST_ID_HEADER: "bad id\twith spaces"})
        gone = await client.get("/gone", headers={REQUEST_ID_HEADER: "erp-req-43"})
        missing = await client.get("/nowhere", headers={REQUEST_ID_HEADER: "erp-req-44"})
    finally:
        await client.close()

    assert given.headers[REQUEST_ID_HEADER] == "erp-req-42"
    assert given_body["request_id"] == "erp-req-42"
    made_id = made.headers[REQUEST_ID_HEADER]
    assert re.fullmatch(r"[0-9a-f]{32}", made_id)
    assert made_body["request_id"] == made_id
    refused_id = refused.headers[REQUEST_ID_HEADER]
    assert re.fullmatch(r"[0-9a-f]{32}", refused_id)
    assert refused_id != made_id
    assert gone.status == 410
    assert gone.headers[REQUEST_ID_HEADER] == "erp-req-43"
    assert missing.status == 404
    assert missing.headers[REQUEST_ID_HEADER] == "erp-req-44"

    handled = [
        json.loads(line)
        for line in stream.getvalue().splitlines()
        if json.loads(line)["message"] == "handling /hello"
    ]
    assert [record["request_id"] for record in handled] == ["erp-req-42", made_id, refused_id]
    assert current_log_context() == {}


async def test_update_middleware_binds_the_update_id(capture: Callable[..., io.StringIO]) -> None:
    stream = capture("text")

    class Update:
        update_id = 100001

    async def handler(event: Any, data: dict[str, Any]) -> str:
        logging.getLogger("vestnik.bot").info("update handled")
        return "done"

    assert await update_log_middleware(handler, Update(), {}) == "done"
    logging.getLogger("vestnik.bot").info("after")
    first, second = stream.getvalue().splitlines()
    assert first.endswith("vestnik.bot [update_id=100001]: update handled")
    assert second.endswith("vestnik.bot: after")


def test_the_filter_rewrites_the_record_itself_for_any_formatter() -> None:
    """Another handler with a plain formatter sees the redacted record too."""
    redacting = RedactingFilter(Redactor([SECRETS["admin"]]))
    try:
        raise RuntimeError(f"token {SECRETS['admin']} for +79161234567")
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "vestnik",
        logging.ERROR,
        __file__,
        1,
        "to %s with %s",
        ("89161234567", SECRETS["admin"]),
        exc_info,
    )
    record.__dict__["phone"] = "+7 916 123-45-67"  # as extra= does
    assert redacting.filter(record)
    assert record.getMessage() == f"to {MASKED} with ***"
    assert record.__dict__["phone"] == MASKED
    assert record.exc_text is not None
    assert record.exc_text.endswith(f"RuntimeError: token *** for {MASKED}")
    plain = logging.Formatter("%(message)s %(phone)s").format(record)
    assert SECRETS["admin"] not in plain
    assert PHONE_DIGITS not in _digits(plain)


async def test_update_middleware_in_an_aiogram_dispatcher(
    capture: Callable[..., io.StringIO],
) -> None:
    from datetime import UTC, datetime

    from aiogram import Bot, Dispatcher
    from aiogram.types import Chat, Message, Update

    stream = capture("json")
    dispatcher = Dispatcher()
    dispatcher.update.outer_middleware(update_log_middleware)

    @dispatcher.message()
    async def on_message(message: Message) -> None:
        logging.getLogger("vestnik.bot").info("message from %s", message.text)

    bot = Bot("123456:" + "A" * 35)
    update = Update(
        update_id=424242,
        message=Message(
            message_id=1,
            date=datetime.now(UTC),
            chat=Chat(id=1, type="private"),
            text="+79161234567",
        ),
    )
    try:
        await dispatcher.feed_update(bot, update)
    finally:
        await bot.session.close()
    [record] = [
        json.loads(line)
        for line in stream.getvalue().splitlines()
        if json.loads(line)["logger"] == "vestnik.bot"
    ]
    assert record == {**record, "update_id": "424242", "message": f"message from {MASKED}"}


def test_default_handler_follows_sys_stderr(
    capture: Callable[..., io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stderr replaced after configure_logging (pytest, an embedding app) still gets the
    lines, and a closed one it no longer uses breaks nothing."""
    capture()  # saves and restores the root logger
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("INFO", "text")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("vestnik").info("to the current stderr")
    assert second.getvalue().endswith("vestnik: to the current stderr\n")


# --------------------------------------------------------------------------- issue 11


def test_text_lines_escape_every_line_breaker_and_terminal_control(
    capture: Callable[..., io.StringIO],
) -> None:
    stream = capture()
    value = "a\nb\rc\x85d\u2028e\u2029f\x1b[31mg\x00h\x7fi\u202ej\tk"
    logging.getLogger("vestnik").info("value %s", value, extra={"field": value})

    [line] = stream.getvalue().splitlines()
    assert line.endswith(
        "value a\\nb\\rc\\x85d\\u2028e\\u2029f\\x1b[31mg\\x00h\\x7fi\\u202ej\\tk"
    )


def test_json_lines_escape_what_json_dumps_leaves_raw(
    capture: Callable[..., io.StringIO],
) -> None:
    stream = capture("json")
    value = "a\x85b\u2028c\u2029d\x9be\u202ef"
    logging.getLogger("vestnik").info("value %s", value)

    output = stream.getvalue()
    assert output.count("\n") == 1 and len(output.splitlines()) == 1
    assert not any(char in output for char in "\x85\u2028\u2029\x9b\u202e")
    assert json.loads(output)["message"] == f"value {value}"


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _limited_handler(
    clock: Callable[[], float], interval: float = 10.0
) -> tuple[io.StringIO, logging.Handler, RefusalRateLimit]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    limiter = RefusalRateLimit(handler, burst=3, interval=interval, clock=clock)
    handler.addFilter(limiter)
    return stream, handler, limiter


def _record(name: str, msg: str, *args: object, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_refusals_are_limited_per_logger_and_template_and_summarised() -> None:
    clock = _Clock()
    stream, handler, limiter = _limited_handler(clock)
    try:
        for n in range(50):
            handler.handle(_record("handlers.erp", "refused from %s", f"10.0.0.{n}"))
            handler.handle(_record("handlers.admin", "bad token from %s", n))
        # Other levels and other loggers are never limited.
        for n in range(5):
            handler.handle(_record("handlers.erp", "refused %s", n, level=logging.ERROR))
            handler.handle(_record("dispatch.worker", "retry %s", n))
            handler.handle(_record("bot.telegram_app", "webhook refused %s", n))
        lines = stream.getvalue().splitlines()
        assert len([x for x in lines if x.startswith("handlers.erp refused from")]) == 3
        assert len([x for x in lines if x.startswith("handlers.admin")]) == 3
        assert len([x for x in lines if x.startswith("handlers.erp refused ")]) == 3 + 5
        assert len([x for x in lines if x.startswith("dispatch.worker")]) == 5
        assert len([x for x in lines if x.startswith("bot.telegram_app")]) == 3
        assert "suppressed" not in stream.getvalue()

        # The next record after the interval brings the summary first, then passes.
        clock.now += 10.0
        handler.handle(_record("handlers.erp", "refused from %s", "10.0.0.99"))
        tail = stream.getvalue().splitlines()[len(lines) :]
        assert tail == [
            "bot.logs suppressed 47 similar warnings from handlers.erp in the last 10 s: "
            "refused from %s",
            "handlers.erp refused from 10.0.0.99",
        ]
        # What is still counted comes out at close (process exit).
        limiter.close()
        rest = stream.getvalue()
        assert "suppressed 47 similar warnings from handlers.admin" in rest
        assert "suppressed 2 similar warnings from bot.telegram_app" in rest
    finally:
        limiter.close()


def test_the_summary_comes_by_itself_when_the_flood_stops() -> None:
    # A real clock: the timer thread writes the summary.
    stream, handler, limiter = _limited_handler(time.monotonic, interval=0.2)
    try:
        for n in range(1000):
            handler.handle(_record("handlers.http.receipts", "forged receipt %s", n))
        assert len(stream.getvalue().splitlines()) == 3
        deadline = time.monotonic() + 3
        while "suppressed" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stream.getvalue().splitlines()[3] == (
            "bot.logs suppressed 997 similar warnings from handlers.http.receipts in the "
            "last 0.2 s: forged receipt %s"
        )
    finally:
        limiter.close()
    assert len(stream.getvalue().splitlines()) == 4


def test_caplog_still_sees_every_refusal(
    capture: Callable[..., io.StringIO], caplog: pytest.LogCaptureFixture
) -> None:
    stream = capture()
    root = logging.getLogger()
    root.addHandler(caplog.handler)
    try:
        for n in range(30):
            logging.getLogger("handlers.erp").warning("refused %s", n)
    finally:
        root.removeHandler(caplog.handler)
    assert len([r for r in caplog.records if r.name == "handlers.erp"]) == 30
    assert len(stream.getvalue().splitlines()) == 10
