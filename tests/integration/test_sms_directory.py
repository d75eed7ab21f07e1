"""The SMS services directory at run time (issue 15): services created, changed, checked and
removed through the admin API carry the next notification, on every replica sharing the
database, without a restart; their secrets never come back in an answer nor reach the log.

Real services on loopback with the fake providers of tests/fakes, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from bot.logs import configure_logging
from bot.logs.refusals import RefusalRateLimit
from tests.conftest import Service, live_settings, make_settings, start_service
from tests.events import make_event
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.sms_smsc import FakeSmsc
from tests.fakes.telegram import FakeTelegram

SERVICES = "/api/v1/sms-services"
# A line of caplog's text written by one of Vestnik's own loggers: "LEVEL    name:file:line".
OWN_LINE = re.compile(r"^[A-Z]+ +(bot|handlers|dispatch|storage)[.:]")
# How long another replica may go on with the directory it read (RuntimeConfig's TTL).
REPLICA_LAG_SECONDS = 2.0


def http_entry(gateway: FakeHttpGateway, **changes: Any) -> dict[str, Any]:
    """A `[[sms_services]]` entry of the generic kind for `gateway`, as a PUT body."""
    return {"kind": "http", "base_url": gateway.base_url, "token": gateway.token, **changes}


async def sent_sms(service: Service, event_id: str) -> int:
    """Post an order-ready event for an unsubscribed client; its SMS notification's id
    once sent."""
    status, body = await service.post_event(make_event(event_id=event_id))
    assert status == 202, body
    [note] = body["notifications"]
    assert note["channel"] == "sms", note
    await service.wait_for_status(note["id"], "sent")
    return int(note["id"])


@pytest.fixture
async def second_gateway() -> AsyncIterator[FakeHttpGateway]:
    async with FakeHttpGateway() as fake:
        yield fake


async def test_a_service_created_through_the_api_carries_the_next_live_notification(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    service = await start_service(
        live_settings(database_url, telegram, sms_gateway, sms_services=[])
    )
    try:
        status, body = await service.post_event(make_event(event_id="before"))
        assert status == 202, body
        assert [n["status"] for n in body["notifications"]] == ["skipped"]

        status, created = await service.admin(
            "PUT", f"{SERVICES}/main", json_body=http_entry(sms_gateway)
        )
        assert status == 201, created
        assert (created["name"], created["origin"], created["in_use"]) == ("main", "stored", True)

        await sent_sms(service, "after")
        [sms] = sms_gateway.sent
        assert sms.phone == "+79161234567" and "ЗК-000123" in sms.text
        status, settings = await service.admin("GET", "/api/v1/settings")
        assert [s["name"] for s in settings["sms_services"]] == ["main"]
    finally:
        await service.client.close()


async def test_a_changed_base_url_reaches_the_second_gateway_on_the_other_replica(
    database_url: str,
    telegram: FakeTelegram,
    sms_gateway: FakeHttpGateway,
    second_gateway: FakeHttpGateway,
) -> None:
    settings = live_settings(database_url, telegram, sms_gateway)
    # The admin talks to one replica; only the other one sends.
    admin_side = await start_service(settings, run_workers=False)
    sending_side = await start_service(settings)
    try:
        await sent_sms(sending_side, "first")
        assert len(sms_gateway.sent) == 1

        # The whole entry with the token as GET shows it: the stored token is kept.
        status, changed = await admin_side.admin(
            "PUT",
            f"{SERVICES}/main",
            json_body=http_entry(second_gateway, token="***"),
        )
        assert status == 200, changed
        assert (changed["origin"], changed["base_url"]) == ("stored", second_gateway.base_url)
        await asyncio.sleep(REPLICA_LAG_SECONDS + 0.3)

        await sent_sms(sending_side, "second")
        assert len(sms_gateway.sent) == 1
        [sms] = second_gateway.sent  # accepted: the bearer token went along
        assert "ЗК-000123" in sms.text
    finally:
        await sending_side.client.close()
        await admin_side.client.close()


async def test_secrets_are_never_answered_and_a_put_without_them_keeps_them(
    live_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    token = sms_gateway.token
    assert token
    answers: list[Any] = []

    status, listed = await live_service.admin("GET", SERVICES)
    answers.append(listed)
    [main] = listed["services"]
    assert (main["origin"], main["token"], main["password"]) == ("file", "***", None)

    entry = http_entry(sms_gateway, sender="SHOP")
    del entry["token"]
    status, changed = await live_service.admin("PUT", f"{SERVICES}/main", json_body=entry)
    answers.append(changed)
    assert status == 200 and changed["token"] == "***", changed
    await sent_sms(live_service, "kept-token")
    assert [sms.sender for sms in sms_gateway.sent] == ["SHOP"]  # the gateway checks the token

    status, cleared = await live_service.admin(
        "PUT", f"{SERVICES}/main", json_body=http_entry(sms_gateway, token=None)
    )
    answers.append(cleared)
    assert status == 200 and cleared["token"] is None
    status, checked = await live_service.admin("POST", f"{SERVICES}/main/check")
    answers.append(checked)
    assert (checked["ok"], checked["error_kind"]) == (False, "auth"), checked

    status, one = await live_service.admin("GET", f"{SERVICES}/main")
    answers.append(one)
    assert status == 200
    assert all(token not in repr(answer) for answer in answers)


@pytest.fixture
def log_stream(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """The log as `vestnik serve` writes it (configure_logging, redacted) into a string,
    with pytest's capture kept first on the root logger, so `caplog.text` is the records
    as the code wrote them, before any redaction."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("DEBUG", "text", stream=stream)
    root.handlers.insert(0, caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    yield stream
    for handler in root.handlers:
        for limiter in handler.filters:
            if isinstance(limiter, RefusalRateLimit):
                limiter.close()
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


async def test_stored_secrets_never_reach_the_log(
    database_url: str,
    telegram: FakeTelegram,
    sms_gateway: FakeHttpGateway,
    caplog: pytest.LogCaptureFixture,
    log_stream: io.StringIO,
) -> None:
    secret = "stored-only-secret-7f3a91"
    async with FakeHttpGateway(token=secret) as backup_gateway:
        service = await start_service(live_settings(database_url, telegram, sms_gateway))
        try:
            body = http_entry(backup_gateway)
            status, _ = await service.admin("PUT", f"{SERVICES}/backup", json_body=body)
            assert status == 201
            body["sender"] = "SHOP"
            status, _ = await service.admin("PUT", f"{SERVICES}/backup", json_body=body)
            assert status == 200
            status, checked = await service.admin("POST", f"{SERVICES}/backup/check")
            assert checked["ok"], checked
            status, _ = await service.admin(
                "PUT", "/api/v1/settings", json_body={"sms_service": "backup"}
            )
            assert status == 200
            await sent_sms(service, "via-backup")
            assert len(backup_gateway.sent) == 1
        finally:
            await service.client.close()

    # Vestnik's own lines, as written (the database driver's DEBUG lines do carry the
    # stored row: the redaction is what keeps those out of the output).
    own = [line for line in caplog.text.splitlines() if OWN_LINE.match(line)]
    assert any("SMS service backup (http) changed through the admin API" in x for x in own)
    assert [line for line in own if secret in line] == []
    assert secret not in log_stream.getvalue()
    # Whatever would print it by mistake, the redaction knows the stored secret now.
    logging.getLogger("tests.mistake").warning("provider said: bad token %s", secret)
    assert "provider said: bad token ***" in log_stream.getvalue()
    assert secret not in log_stream.getvalue()


async def test_a_service_in_use_cannot_be_removed_and_one_that_is_not_can(
    live_service: Service, second_gateway: FakeHttpGateway
) -> None:
    status, refused = await live_service.admin("DELETE", f"{SERVICES}/main")
    assert status == 409, refused
    assert refused["error"]["code"] == "sms_service_in_use"
    assert "last SMS service" in refused["error"]["message"]

    status, _ = await live_service.admin(
        "PUT", f"{SERVICES}/backup", json_body=http_entry(second_gateway)
    )
    assert status == 201
    status, _ = await live_service.admin(
        "PUT", "/api/v1/settings", json_body={"sms_service": "backup"}
    )
    assert status == 200
    status, refused = await live_service.admin("DELETE", f"{SERVICES}/backup")
    assert status == 409
    assert "notify.sms_service" in refused["error"]["message"]

    status, left = await live_service.admin("DELETE", f"{SERVICES}/main")
    assert status == 200, left
    assert ([s["name"] for s in left["services"]], left["in_use"]) == (["backup"], "backup")
    status, _ = await live_service.admin("GET", f"{SERVICES}/main")
    assert status == 404
    status, _ = await live_service.admin("DELETE", f"{SERVICES}/main")
    assert status == 404

    # The file still lists `main`; a process started on it keeps it removed.
    restarted = await start_service(live_service.settings, run_workers=False)
    try:
        status, listed = await restarted.admin("GET", SERVICES)
        assert [s["name"] for s in listed["services"]] == ["backup"]
    finally:
        await restarted.client.close()


async def test_check_reports_the_balance_and_a_refused_token(
    live_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    async with FakeSmsc(login="shop", password="smsc-password") as smsc:
        smsc_entry = {
            "kind": "smsc",
            "base_url": smsc.base_url,
            "login": "shop",
            "password": "smsc-password",
        }
        status, _ = await live_service.admin("PUT", f"{SERVICES}/smsc", json_body=smsc_entry)
        assert status == 201
        status, checked = await live_service.admin("POST", f"{SERVICES}/smsc/check")
    assert status == 200
    assert (checked["ok"], checked["balance"], checked["error"]) == (True, "1000.00", None)
    assert checked["detail"].startswith("smsc: balance 1000.00")

    wrong = http_entry(sms_gateway, token="wrong-token")
    status, _ = await live_service.admin("PUT", f"{SERVICES}/wrong", json_body=wrong)
    assert status == 201
    status, checked = await live_service.admin("POST", f"{SERVICES}/wrong/check")
    assert status == 200
    assert (checked["ok"], checked["balance"], checked["error_kind"]) == (False, None, "auth")
    assert "401" in checked["error"]

    status, missing = await live_service.admin("POST", f"{SERVICES}/nobody/check")
    assert status == 404, missing


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"kind": "http", "base_url": "ftp://gateway.example/sms"}, [["base_url"]]),
        ({"kind": "http"}, [["base_url"]]),
        ({"kind": "smsru"}, [["api_key"]]),
        ({"kind": "smsaero", "email": "shop@example.com"}, [["api_key"]]),
        ({"kind": "smsc", "login": "shop"}, [["password"]]),
        ({"kind": "twilio", "account_sid": "AC1", "token": "t0ken", "sender": None}, [["sender"]]),
        ({"kind": "pigeon"}, [["kind"]]),
        ({"kind": "http", "base_url": "http://gw.example", "colour": "red"}, [["colour"]]),
        ({"name": "other", "kind": "http", "base_url": "http://gw.example"}, [["name"]]),
        (
            {"kind": "http", "base_url": "http://gw.example", "rate_per_second": 0},
            [["rate_per_second"]],
        ),
    ],
)
async def test_an_invalid_service_is_a_422_naming_the_field(
    service: Service, body: dict[str, Any], fields: list[list[str]]
) -> None:
    status, refused = await service.admin("PUT", f"{SERVICES}/new", json_body=body)

    assert status == 422, refused
    assert refused["error"]["code"] == "validation_error"
    assert [detail["loc"] for detail in refused["error"]["details"]] == fields
    status, listed = await service.admin("GET", SERVICES)
    assert listed == {"services": [], "in_use": None}


async def test_the_notify_settings_may_only_name_a_service_of_the_directory(
    database_url: str, sms_gateway: FakeHttpGateway
) -> None:
    service = await start_service(make_settings(database_url))
    try:
        status, refused = await service.admin(
            "PUT", "/api/v1/settings", json_body={"sms_service": "main"}
        )
        assert status == 422 and refused["error"]["code"] == "settings_rejected"
        status, _ = await service.admin(
            "PUT", f"{SERVICES}/main", json_body=http_entry(sms_gateway)
        )
        assert status == 201
        status, settings = await service.admin(
            "PUT", "/api/v1/settings", json_body={"sms_service": "main"}
        )
        assert status == 200 and settings["sms_service"] == "main", settings
    finally:
        await service.client.close()
