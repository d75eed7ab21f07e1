"""Abuse (issue 7, item 5): forged, replayed and stale requests, wrong tokens, forged button
presses, strangers, sandbox escapes in per-client templates — all refused, none crashes, each
refusal logged."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from handlers.common import signature
from handlers.http import openapi
from storage.models import Event, Notification, TelegramUpdate
from tests.conftest import ADMIN_TOKEN, WEBHOOK_SECRET, Service
from tests.events import make_event
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram
from tests.integration.test_bot_manager import (
    OTHER_MANAGER_CHAT,
    awaiting_prompt,
    buttons,
    press,
    status_of,
)
from tests.integration.test_bot_support import (
    CLIENT_CHAT,
    MANAGER_CHAT,
    STRANGER_CHAT,
    add_manager,
    say,
)
from tests.integration.test_bot_webhook import SECRET, start_webhook_service, webhook_url


def check_error(body: Any, code: str | None = None) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    if code is not None:
        assert body["error"]["code"] == code, body


async def count(service: Service, model: type) -> int:
    async with service.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def refusals(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(1 for record in caplog.records if text in record.getMessage())


# --------------------------------------------------------------------------- ERP signatures


async def post_signed(service: Service, raw: bytes, header: str | None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers[signature.HEADER] = header
    response = await service.client.post("/api/v1/events", data=raw, headers=headers)
    return response.status, await response.json()


async def test_forged_stale_and_garbage_signatures_get_401_and_are_logged(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    body = json.dumps(make_event(event_id="abuse-1")).encode()
    other = json.dumps(make_event(event_id="abuse-2")).encode()
    now = int(time.time())
    valid_for_other = signature.sign(WEBHOOK_SECRET, other)
    good_hex = signature.compute(WEBHOOK_SECRET, now, body)
    headers: dict[str, str | None] = {
        "missing": None,
        "empty": "",
        "garbage": "garbage",
        "replayed_for_another_body": valid_for_other,
        "stale_301s": signature.sign(WEBHOOK_SECRET, body, timestamp=now - 301),
        "stale_1d": signature.sign(WEBHOOK_SECRET, body, timestamp=now - 86_400),
        "future_far": signature.sign(WEBHOOK_SECRET, body, timestamp=now + 10**12),
        "another_secret": signature.sign("not-the-secret", body),
        "empty_secret": signature.sign("", body),
        "timestamp_not_int": f"t=now,v1={good_hex}",
        "timestamp_float": f"t={now}.0,v1={good_hex}",
        "no_timestamp": f"v1={good_hex}",
        "no_v1": f"t={now}",
        "empty_v1": f"t={now},v1=",
        "v0_scheme": f"t={now},v0={good_hex}",
        "truncated_hex": f"t={now},v1={good_hex[:32]}",
        "signed_timestamp_swapped": f"t={now + 1},v1={good_hex}",
        "uppercase_keys": f"T={now},V1={good_hex}",
        "huge": f"t={now}," + ",".join(f"v1={'0' * 64}" for _ in range(50)),
        "negative_timestamp": f"t=-{now},v1={good_hex}",
    }
    # Signed just before it is posted: a timestamp taken at the top would drift back into
    # the window while the cases above are posted (seconds on a loaded machine).
    headers["future_301s"] = None
    for case, header in headers.items():
        if case == "future_301s":
            header = signature.sign(WEBHOOK_SECRET, body, timestamp=int(time.time()) + 301)
        status, answer = await post_signed(service, body, header)
        assert status == 401, (case, status, answer)
        check_error(answer, "invalid_signature")

    assert refusals(caplog, "ERP webhook refused") == len(headers)
    assert await count(service, Event) == 0
    assert await count(service, Notification) == 0


async def test_a_replayed_signed_request_acts_once(service: Service) -> None:
    raw = json.dumps(make_event(event_id="abuse-replay")).encode()
    header = signature.sign(WEBHOOK_SECRET, raw)

    first = await post_signed(service, raw, header)
    notes = await count(service, Notification)
    replays = [await post_signed(service, raw, header) for _ in range(5)]

    assert first[0] == 202
    assert {status for status, _ in replays} == {200}
    assert all(answer["duplicate"] is True for _, answer in replays)
    assert await count(service, Event) == 1
    assert await count(service, Notification) == notes


# --------------------------------------------------------------------------- admin tokens


def admin_routes(service: Service) -> list[tuple[str, str]]:
    """(method, path) of every route under /api/v1 that the OpenAPI document does not mark
    public, with sample path parameters."""
    document = openapi.document()
    public = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and operation.get("security") == []
    }
    samples = {"id": "1", "code": "client_order.ready", "name": "main", "recipient": "client"}
    found = set()
    for route in service.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if not path or not path.startswith("/api/v1/") or route.method == "HEAD":
            continue
        if (route.method, path) in public:
            continue
        found.add((route.method, re.sub(r"\{(\w+)\}", lambda m: samples[m.group(1)], path)))
    return sorted(found)


BAD_AUTHORIZATION = {
    "missing": None,
    "empty": "",
    "bearer_empty": "Bearer ",
    "bearer_wrong": "Bearer wrong-token",
    "token_prefix": f"Bearer {ADMIN_TOKEN[:-1]}",
    "token_suffix": f"Bearer {ADMIN_TOKEN}x",
    "no_scheme": ADMIN_TOKEN,
    "basic": "Basic dGVzdDp0ZXN0",
    "token_case": f"Bearer {ADMIN_TOKEN.upper()}",
    "two_tokens": f"Bearer wrong, Bearer {ADMIN_TOKEN}x",
    "long": "Bearer " + "x" * 4000,
}


async def test_every_admin_route_refuses_wrong_tokens_and_logs_it(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    routes = admin_routes(service)
    assert len(routes) >= 15, routes
    assert ("PUT", "/api/v1/clients/1") in routes

    tried = 0
    for method, path in routes:
        for case, authorization in BAD_AUTHORIZATION.items():
            headers = {} if authorization is None else {"Authorization": authorization}
            response = await service.client.request(
                method, path, json={"name": "x"}, headers=headers
            )
            answer = await response.json()
            assert response.status == 401, (method, path, case, answer)
            check_error(answer, "unauthorized")
            tried += 1

    assert refusals(caplog, "admin API refused") == tried
    status, _ = await service.admin("GET", "/api/v1/clients/1")
    assert status == 404, "no client was created by the refused PUTs"


# --------------------------------------------------------------------------- Telegram webhook


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_telegram_webhook_without_the_secret_gets_401_and_is_logged(
    database_url: str,
    telegram: FakeTelegram,
    sms_gateway: FakeHttpGateway,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    service = await start_webhook_service(
        database_url, telegram, sms_gateway, webhook_secret=SECRET
    )
    try:
        url = webhook_url(service)
        # (Surrounding whitespace is not part of an HTTP header value: not tried.)
        secrets = (None, "", "wrong", SECRET.upper(), SECRET[:-1], SECRET + "x", "x" * 300)
        for secret in secrets:
            update = telegram.command(STRANGER_CHAT, "/start")
            delivery = await telegram.post_webhook(url, update, secret)
            assert delivery.status == 401, secret
            check_error(json.loads(delivery.body), "unauthorized")
        assert refusals(caplog, "telegram webhook refused") == len(secrets)
        assert telegram.messages_to(STRANGER_CHAT) == []
        async with service.db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(TelegramUpdate)) == 0
    finally:
        await service.client.close()


# --------------------------------------------------------------------------- Telegram bot


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_forged_callback_data_changes_nothing_and_is_logged(
    live_service: Service, telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    note, prompt = await awaiting_prompt(live_service, telegram)
    await add_manager(
        live_service, "M-8", name="Пётр Другой", phone=None, chat_id=OTHER_MANAGER_CHAT
    )
    send = buttons(prompt)[0][1]
    nid = note["id"]

    # Another manager's notification, a stranger, a client: refused.
    assert await press(telegram, prompt, send, chat_id=OTHER_MANAGER_CHAT) == (
        "Это уведомление не найдено среди ваших."
    )
    for sender in (STRANGER_CHAT, CLIENT_CHAT):
        for action in ("send", "cancel", "manual"):
            answer = await press(telegram, prompt, f"nt:{action}:{nid}", from_id=sender)
            assert answer == "Эти кнопки — для менеджеров магазина.", (sender, action)
    # Unknown ids and malformed data: refused or «no longer valid».
    malformed = (
        f"nt:send:{nid + 10**6}",
        "nt:send:1e3",
        f"nt:send: {nid + 10**6}",
        f"nt:send:+{nid + 10**6}",
        "nt:send:0x1",
        "nt::",
        "nt",
        ":",
        "",
        "nt:send:" + "9" * 54,
        "nt:ОТПРАВИТЬ:1",
        "nt:send:1\x00",
        "{{ ''.__class__ }}",
    )
    before = refusals(caplog, "unknown callback data")
    for data in malformed:
        answer = await press(telegram, prompt, data)
        assert answer in (
            "Это уведомление не найдено среди ваших.",
            "Эта кнопка больше не действует.",
        ), data
    assert refusals(caplog, "unknown callback data") > before

    assert await status_of(live_service, nid) == "awaiting_confirmation"
    assert telegram.messages_to(CLIENT_CHAT) == []
    assert telegram.edits == []


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_manager_commands_from_a_stranger_are_refused_and_logged(
    live_service: Service, telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await add_manager(live_service, chat_id=MANAGER_CHAT)
    commands = (
        ("/journal", None),
        ("/journal", "failed"),
        ("/status", "1"),
        ("/status", "-1"),
        ("/status", "99999999999999999999999"),
        ("/resend", "1; DROP TABLE notifications"),
        ("/sent", "1"),
        ("/balance", None),
        ("/testsms", "+79161234567"),
        ("/testsms", "{{ ''.__class__.__mro__ }}"),
    )
    for command, args in commands:
        [reply] = await say(telegram, telegram.command(STRANGER_CHAT, command, args))
        assert "только менеджерам" in (reply.text or ""), (command, args)

    assert refusals(caplog, "tried a manager command: refused") == len(commands)
    assert telegram.messages_to(MANAGER_CHAT) == []
    assert await count(live_service, Notification) == 0


# --------------------------------------------------------------------------- sandbox escapes

ESCAPES = (
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}",
    "{{ config }}{{ request }}{{ settings }}",
    "{{ client.__class__ }}",
    "{{ client.__dict__ }}",
    "{{ document.__class__.__init__.__globals__ }}",
    "{{ (1).__class__.__base__ }}",
    "{{ 'a'|attr('__class__') }}",
    "{{ ''|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "{{ ('%c'|format(95))*2 ~ 'class' ~ ('%c'|format(95))*2 }}",
    "{{ range.__self__ }}",
    "{{ dict.mro() }}",
    "{{ [].__class__.__base__.__subclasses__() }}",
    "{{ money.__globals__ }}",
    "{{ date_ru.__code__ }}",
    "{% set x = ''.__class__ %}{{ x }}",
    "{% import 'os' as os %}{{ os }}",
    "{% include '/etc/passwd' %}",
    "{% extends '../../../../etc/passwd' %}",
    "{{ range(10**9)|list }}",
    "{{ 'x' * 10**9 }}",
    "{% for i in range(10**6) %}{% for j in range(10**6) %}x{% endfor %}{% endfor %}",
    "{{ (9**9**9) }}",
)
# What a leak of Python internals looks like in a text or an error message.
LEAKS = re.compile(
    r"<class |<function |<built-in|<module |<method |object at 0x|Traceback|__builtins__|"
    r"/etc/passwd:|root:x:|uid=\d"
)


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sandbox_escapes_in_client_templates_are_refused(service: Service) -> None:
    outcomes: dict[str, int] = {"refused_at_put": 0, "failed_at_render": 0, "harmless": 0}
    for number, source in enumerate(ESCAPES):
        client_id = f"C-ESC-{number}"
        status, body = await service.admin(
            "PUT",
            f"/api/v1/clients/{client_id}",
            json_body={
                "name": "ООО Ромашка",
                "phone": "+79161234567",
                "overrides": {"client_order.ready": {"template_client": source}},
            },
        )
        assert status in (200, 201, 422), (source, status, body)
        assert not LEAKS.search(json.dumps(body, ensure_ascii=False)), (source, body)
        if status == 422:
            check_error(body, "validation_error")
            outcomes["refused_at_put"] += 1
            continue
        event = make_event(
            "client_order.ready",
            event_id=f"esc-{number}",
            client={"id": client_id, "name": "ООО Ромашка", "phone": "+79161234567"},
        )
        status, answer = await service.post_event(event)
        assert status == 202, (source, answer)
        [note] = [n for n in answer["notifications"] if n["recipient"] == "client"]
        async with service.db.sessions() as session:
            row = await session.get(Notification, note["id"])
        assert row is not None
        texts = f"{row.text or ''}\n{row.reason or ''}"
        assert not LEAKS.search(texts), (source, row.status, texts[:500])
        if row.status == "failed":
            assert "template" in (row.reason or ""), (source, row.reason)
            outcomes["failed_at_render"] += 1
        else:
            outcomes["harmless"] += 1
            print("harmless:", source, "->", (row.text or "")[:120])
    print("sandbox escapes:", outcomes)
    assert outcomes["refused_at_put"] + outcomes["failed_at_render"] + outcomes["harmless"] == len(
        ESCAPES
    )
    # The service is still up and answering.
    status, _ = await service.admin("GET", "/api/v1/settings")
    assert status == 200
