"""Security (issue 11, findings 8 and 9): forged log lines and refusal floods in the log;
SMS pumping through the test SMS.

Each scenario runs against the real service on loopback: the log output is what
`configure_logging` (as `vestnik serve` sets it up) writes, the SMS go to the fake provider.
"""

from __future__ import annotations

import asyncio
import atexit
import io
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.logs import RefusalRateLimit, configure_logging
from dispatch.ops.sms_tools import TEST_SMS_EVENT_TYPE
from handlers.common import signature
from storage.models import Notification
from tests.conftest import Service, live_settings, start_service
from tests.events import make_event
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram
from tests.integration.test_bot_support import ADMIN_CHAT, MANAGER_CHAT, add_manager, say

FORGED = "2026-12-02 06:30:00,000 CRITICAL vestnik.security: database wiped by admin"
# Every way a value could break a line or paint the terminal: LF, CR, NEL, U+2028, ESC.
BREAKERS = ("\n", "\r", "\x85", "\u2028", "\x1b[2K\r")
_RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")

LogCapture = Callable[..., io.StringIO]


@pytest.fixture
def log_output() -> Iterator[LogCapture]:
    """`configure_logging` into a string, as `vestnik serve` configures stderr; the root
    logger (and pytest's handlers on it) are restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level

    def configure(fmt: str = "text", level: str = "INFO", **kwargs: Any) -> io.StringIO:
        stream = io.StringIO()
        configure_logging(level, fmt, stream=stream, **kwargs)
        return stream

    yield configure
    for handler in root.handlers:
        for limiter in handler.filters:
            if isinstance(limiter, RefusalRateLimit):
                atexit.unregister(limiter.close)
                limiter.close()
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def record_lines(output: str) -> list[str]:
    """The lines that start a record (a timestamp at column 0)."""
    return [line for line in output.splitlines() if _RECORD_START.match(line)]


# --------------------------------------------------------------------------- finding 8


@pytest.mark.parametrize("breaker", BREAKERS)
async def test_a_forged_line_in_an_event_id_stays_inside_its_own_record(
    service: Service, log_output: LogCapture, breaker: str
) -> None:
    # The per-event line is DEBUG (a periodic summary is INFO).
    stream = log_output("text", "DEBUG")
    event_id = f"evt-1{breaker}{FORGED}"

    status, body = await service.post_event(make_event(event_id=event_id))

    assert status == 202, body
    output = stream.getvalue()
    # str.splitlines breaks at every separator a log reader might: one line per record.
    lines = output.splitlines()
    assert all(_RECORD_START.match(line) for line in lines), output
    assert not any(line.startswith(FORGED[:23]) for line in lines), output
    [logged] = [line for line in lines if "ERP event evt-1" in line]
    assert FORGED in logged
    assert "\x1b" not in output
    assert repr(breaker)[1:-1].split("[")[0] in logged  # shown as an escape, e.g. \n


async def test_json_lines_stay_one_record_each_with_the_value_intact(
    service: Service, log_output: LogCapture
) -> None:
    stream = log_output("json", "DEBUG")
    event_id = "evt-2" + "".join(BREAKERS) + FORGED

    status, body = await service.post_event(make_event(event_id=event_id))

    assert status == 202, body
    raw_lines = stream.getvalue().split("\n")[:-1]
    assert raw_lines == stream.getvalue().splitlines()  # no NEL, U+2028 or CR in a line
    records = [json.loads(line) for line in raw_lines]
    [logged] = [r for r in records if r["message"].startswith("ERP event evt-2")]
    assert event_id in logged["message"]  # escaped on the line, intact once parsed


async def test_an_exception_keeps_its_traceback_lines_but_cannot_forge_a_record(
    log_output: LogCapture,
) -> None:
    stream = log_output("text")
    try:
        raise ValueError(f"bad receipt id 'x\n{FORGED}'")
    except ValueError:
        logging.getLogger("handlers.http.receipts").exception(
            "receipt refused: %s", f"x\n{FORGED}"
        )

    lines = stream.getvalue().splitlines()
    [head] = record_lines(stream.getvalue())
    assert head == lines[0] and "receipt refused: x\\n2026-12-02" in head
    assert lines[1:] and all(line.startswith("  ") for line in lines[1:])
    assert "  Traceback (most recent call last):" in lines
    assert f"  {FORGED}'" in lines  # the exception's own text, indented


@pytest.mark.parametrize("backend", ["sqlite"])  # refused before any database work
async def test_a_flood_of_forged_erp_posts_writes_a_few_lines_and_one_summary(
    service: Service, log_output: LogCapture
) -> None:
    interval = 4.0
    stream = log_output("text", refusal_interval=interval)
    total = 2000
    body = json.dumps(make_event(event_id="flood")).encode()
    forged = f"t={int(time.time())},v1={'0' * 64}"
    headers = {"Content-Type": "application/json", signature.HEADER: forged}
    statuses: list[int] = []

    async def attacker(count: int) -> None:
        for _ in range(count):
            response = await service.client.post("/api/v1/events", data=body, headers=headers)
            statuses.append(response.status)
            response.release()

    started = time.monotonic()
    await asyncio.gather(*(attacker(total // 8) for _ in range(8)))
    elapsed = time.monotonic() - started
    flood_over = time.monotonic()

    assert statuses == [401] * total
    # The summary comes by itself at the end of the interval, with no further record.
    summary = re.compile(
        r"suppressed ([\d,]+) similar warnings from handlers\.http\.erp in the last 4 s"
    )
    while time.monotonic() - flood_over < interval + 2:
        lines = stream.getvalue().splitlines()
        refused = [line for line in lines if "WARNING handlers.http.erp" in line]
        summaries = [m for line in lines if (m := summary.search(line))]
        suppressed = sum(int(m.group(1).replace(",", "")) for m in summaries)
        if len(refused) + suppressed == total:
            break
        await asyncio.sleep(0.1)
    windows = int(elapsed // interval) + 1
    print(
        f"{total} forged posts in {elapsed:.1f} s: {len(refused)} refusal lines, "
        f"{len(summaries)} summary line(s), {suppressed} suppressed"
    )
    assert len(refused) + suppressed == total, stream.getvalue()[-2000:]
    assert len(refused) <= 10 * windows
    assert 1 <= len(summaries) <= windows
    assert len(lines) <= 11 * windows + 5  # a few unrelated lines at most


# --------------------------------------------------------------------------- finding 9

DAILY_LIMIT = 3


@pytest.fixture
async def capped_service(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> AsyncIterator[Service]:
    """Live mode with a daily cap of 3 test SMS."""
    settings = live_settings(
        database_url, telegram, sms_gateway, test_sms={"daily_limit": DAILY_LIMIT}
    )
    running = await start_service(settings)
    try:
        yield running
    finally:
        await running.client.close()


async def journaled_test_sms(service: Service) -> int:
    async with service.db.sessions() as session:
        found = await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.event_type == TEST_SMS_EVENT_TYPE)
        )
    return int(found or 0)


async def test_a_manager_who_is_not_an_admin_cannot_send_the_test_sms(
    live_service: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    await add_manager(live_service, chat_id=MANAGER_CHAT)

    [reply] = await say(telegram, telegram.command(MANAGER_CHAT, "/testsms", "+79161234567"))

    assert "только администраторы" in (reply.text or "")
    assert sms_gateway.sent == []
    assert await journaled_test_sms(live_service) == 0


async def test_an_admin_cannot_send_the_test_sms_abroad(
    live_service: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    await add_manager(live_service, "M-1", is_admin=True, chat_id=ADMIN_CHAT)

    for number in ("+1 202 555-0123", "+44 7911 123456", "+800 1234 5678"):
        [reply] = await say(telegram, telegram.command(ADMIN_CHAT, "/testsms", number))
        text = reply.text or ""
        assert "не отправлено" in text and "RU, KZ, BY" in text, (number, text)
    assert sms_gateway.sent == []
    assert await journaled_test_sms(live_service) == 0

    # Kazakhstan shares +7 with Russia; the number's own region decides.
    [reply] = await say(telegram, telegram.command(ADMIN_CHAT, "/testsms", "+7 701 123-45-67"))
    assert "Тестовое SMS на +77011234567 отправлено" in (reply.text or "")
    assert [sms.phone for sms in sms_gateway.sent] == ["+77011234567"]


async def test_the_api_refuses_a_number_outside_the_allowed_countries(
    live_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    status, body = await live_service.admin(
        "POST", "/api/v1/test-sms", json_body={"phone": "+12025550123"}
    )

    assert status == 422, body
    assert body["error"]["code"] == "validation_error"
    assert "RU, KZ, BY" in body["error"]["message"]
    assert body["error"]["details"][0]["allowed"] == ["RU", "KZ", "BY"]
    assert sms_gateway.sent == []


async def test_the_daily_cap_is_shared_by_the_api_and_the_bot_and_resets_next_day(
    capped_service: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    await add_manager(capped_service, "M-1", is_admin=True, chat_id=ADMIN_CHAT)
    [reply] = await say(telegram, telegram.command(ADMIN_CHAT, "/testsms", "+79161234567"))
    assert "отправлено" in (reply.text or "")
    for _ in range(DAILY_LIMIT - 1):
        status, body = await capped_service.admin(
            "POST", "/api/v1/test-sms", json_body={"phone": "+79161234567"}
        )
        assert status == 200, body

    # The (daily_limit + 1)-th: 429 through the API, refused in the bot, nothing sent.
    response = await capped_service.client.post(
        "/api/v1/test-sms",
        json={"phone": "+79161234567"},
        headers={"Authorization": f"Bearer {capped_service.settings.admin.token}"},
    )
    body = await response.json()
    assert response.status == 429, body
    assert body["error"]["code"] == "too_many_requests"
    assert body["error"]["details"][0]["resets_at"].endswith("T00:00:00+00:00")
    assert "resets at" in body["error"]["message"]
    assert 0 < int(response.headers["Retry-After"]) <= 86400
    [reply] = await say(telegram, telegram.command(ADMIN_CHAT, "/testsms", "+79161234567"))
    assert "лимит на сегодня (3 SMS) исчерпан" in (reply.text or "")
    assert len(sms_gateway.sent) == DAILY_LIMIT
    assert await journaled_test_sms(capped_service) == DAILY_LIMIT

    # Yesterday's test SMS do not count today.
    async with capped_service.db.transaction() as session:
        rows = await session.scalars(
            select(Notification).where(Notification.event_type == TEST_SMS_EVENT_TYPE)
        )
        for row in rows:
            row.created_at -= timedelta(days=1)
    status, body = await capped_service.admin(
        "POST", "/api/v1/test-sms", json_body={"phone": "+79161234567"}
    )
    assert status == 200, body


async def test_parallel_requests_cannot_squeeze_past_the_cap(
    capped_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    results = await asyncio.gather(
        *(
            capped_service.admin("POST", "/api/v1/test-sms", json_body={"phone": "+79161234567"})
            for _ in range(12)
        )
    )

    statuses = sorted(status for status, _body in results)
    assert statuses == [200] * DAILY_LIMIT + [429] * (12 - DAILY_LIMIT)
    assert len(sms_gateway.sent) == DAILY_LIMIT
