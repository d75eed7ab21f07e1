"""Forged and flooding delivery receipts (issue 11, findings 1, 7 and 8, the receipt parts):
`POST /api/v1/providers/{name}/status` on a running Vestnik, as an attacker on the network
would post it.

Before: a service without `token` took any callback (SMSC ids are our sequential notification
ids, so anyone could mark any notification failed or delivered), SMS.ru skipped its hash
check when `hash` was left out, 7,000 ids in one body became 7,000 parked rows and 7,000 log
lines, and a deeply nested body or a NUL in an id was a 500 with a stack trace.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from bot.cli import check_config
from bot.cli.serve import describe
from bot.settings import Settings
from dispatch.delivery import receipts
from dispatch.delivery.channels.sms.smsru import callback_hash
from storage.models import Event, Notification, NotificationHistory, ParkedReceipt
from storage.types import utcnow
from tests.conftest import Service, make_settings, start_service
from tests.fakes.sms_http import FakeHttpGateway

TOKEN = "callback-token-0123456789abcdef"
API_ID = "smsru-api-id-0123456789abcdef"
RECEIPT_LOGGERS = ("handlers.http.receipts", "dispatch.delivery.receipts")

StartService = Callable[..., Awaitable[Service]]


def sms_service(kind: str, *, token: str | None = None, **extra: Any) -> dict[str, Any]:
    """One `[[sms_services]]` entry named after its kind (nothing is ever sent to it)."""
    entry: dict[str, Any] = {"name": kind, "kind": kind, "base_url": "http://127.0.0.1:9/"}
    if token is not None:
        entry["token"] = token
    return {**entry, **extra}


@pytest.fixture
async def start(database_url: str) -> AsyncIterator[StartService]:
    """Start Vestnik (no workers: nothing but the receipts route matters) with these SMS
    services; stopped at the end of the test."""
    running: list[Service] = []

    async def _start(*services: dict[str, Any]) -> Service:
        settings = make_settings(database_url, sms_services=list(services))
        service = await start_service(settings, run_workers=False)
        running.append(service)
        return service

    yield _start
    for service in running:
        await service.client.close()


async def seed_sent(service: Service, provider: str, provider_message_id: str | None) -> int:
    """A notification SMS'd through `provider`, waiting for its receipt (`sent`); with
    `provider_message_id` None, its own id is the provider's (SMSC echoes our id)."""
    now = utcnow()
    async with service.db.transaction() as session:
        event = Event(event_id=f"erp-{now.timestamp()}", type="client_order.ready", payload={})
        session.add(event)
        await session.flush()
        note = Notification(
            event_pk=event.id,
            event_type="client_order.ready",
            recipient="client",
            channel="sms",
            phone="+79161234567",
            status="sent",
            provider=provider,
            sent_at=now,
        )
        session.add(note)
        await session.flush()
        note.provider_message_id = provider_message_id or str(note.id)
        session.add(
            NotificationHistory(notification_id=note.id, at=now, to_status="sent", actor="test")
        )
        return note.id


async def status_of(service: Service, notification_id: int) -> str:
    async with service.db.sessions() as session:
        row = await session.get(Notification, notification_id)
    assert row is not None
    return row.status


async def parked(service: Service) -> int:
    async with service.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(ParkedReceipt)) or 0)


async def post(
    service: Service,
    name: str,
    body: bytes,
    *,
    content_type: str = "application/json",
    query: str = "",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    response = await service.client.post(
        f"/api/v1/providers/{name}/status{query}",
        data=body,
        headers={"Content-Type": content_type, **(headers or {})},
    )
    if response.content_type == "application/json":
        return response.status, await response.json()
    return response.status, await response.text()


def check_error(body: Any, code: str) -> None:
    """The contract's error body, no stack trace, no word on which secret is missing."""
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert "Traceback" not in body["error"]["message"]


def form(**fields: str) -> bytes:
    return urlencode(fields).encode()


BEARER = {"Authorization": f"Bearer {TOKEN}"}


def http_receipts(*ids: str, status: str = "failed", **extra: str) -> bytes:
    items = [{"id": pid, "status": status, **extra} for pid in ids]
    return json.dumps(items if len(items) != 1 else items[0], separators=(",", ":")).encode()


# ------------------------------------------------------------------ finding 1: forgery


@pytest.mark.parametrize("kind", ["smsc", "smsaero", "http"])
async def test_a_forged_receipt_for_a_service_without_token_is_refused(
    start: StartService, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: 200, and the notification became `failed` on the attacker's word."""
    service = await start(sms_service(kind))
    note = await seed_sent(service, kind, None if kind == "smsc" else "4242")
    pmid = str(note) if kind == "smsc" else "4242"
    bodies = {
        "smsc": (form(id=pmid, status="20"), "application/x-www-form-urlencoded"),
        "smsaero": (json.dumps({"id": pmid, "status": 2}).encode(), "application/json"),
        "http": (http_receipts(pmid), "application/json"),
    }
    body, content_type = bodies[kind]
    caplog.set_level(logging.INFO)

    for query in ("", "?secret=", "?secret=guessed"):
        status, answer = await post(service, kind, body, content_type=content_type, query=query)
        assert status == 401, (query, answer)
        check_error(answer, "invalid_signature")
        assert "token" not in answer["error"]["message"]

    assert await status_of(service, note) == "sent"
    assert await parked(service) == 0


async def test_with_a_token_only_the_callback_carrying_it_is_applied(
    start: StartService,
) -> None:
    """The same SMSC receipt: refused with a wrong secret, applied with the right one."""
    service = await start(sms_service("smsc", token=TOKEN))
    note = await seed_sent(service, "smsc", None)
    body = form(id=str(note), status="20")
    ctype = "application/x-www-form-urlencoded"

    assert (await post(service, "smsc", body, content_type=ctype))[0] == 401
    assert (await post(service, "smsc", body, content_type=ctype, query="?secret=x"))[0] == 401
    assert await status_of(service, note) == "sent"
    status, answer = await post(
        service, "smsc", body, content_type=ctype, query=f"?secret={TOKEN}"
    )

    assert (status, answer) == (200, "OK")
    assert await status_of(service, note) == "failed"


async def test_smsru_without_hash_is_refused_when_api_key_is_set(start: StartService) -> None:
    """Before: leaving `hash` out skipped the check and the receipt was applied."""
    service = await start(sms_service("smsru", api_key=API_ID))
    note = await seed_sent(service, "smsru", "000101-1234567")
    entries = ["sms_status\n000101-1234567\n104\n1700000000"]
    ctype = "application/x-www-form-urlencoded"
    unsigned = urlencode([("data[]", entry) for entry in entries]).encode()
    wrong = urlencode([("data[]", entries[0]), ("hash", callback_hash("guess", entries))]).encode()

    for body in (unsigned, wrong):
        status, answer = await post(service, "smsru", body, content_type=ctype)
        assert status == 401, answer
        check_error(answer, "invalid_signature")
    assert await status_of(service, note) == "sent"

    signed = urlencode(
        [("data[]", entries[0]), ("hash", callback_hash(API_ID, entries))]
    ).encode()
    assert await post(service, "smsru", signed, content_type=ctype) == (200, "100")
    assert await status_of(service, note) == "failed"


async def test_smsru_with_neither_api_key_nor_token_refuses_every_callback(
    start: StartService,
) -> None:
    service = await start(sms_service("smsru"))
    note = await seed_sent(service, "smsru", "000102-1234567")
    body = form(**{"data[]": "sms_status\n000102-1234567\n103\n1700000000"})

    status, answer = await post(
        service, "smsru", body, content_type="application/x-www-form-urlencoded"
    )

    assert status == 401, answer
    assert await status_of(service, note) == "sent"


# ------------------------------------------------ finding 1/8: floods, parking, log lines


async def test_seven_thousand_ids_in_one_callback_are_refused_whole(
    start: StartService, caplog: pytest.LogCaptureFixture
) -> None:
    """Before (authenticated or not): 7,000 parked rows, 7,002 log lines, ~12 s on SQLite."""
    service = await start(sms_service("http", token=TOKEN))
    note = await seed_sent(service, "http", "gw-1")
    body = http_receipts("gw-1", *(str(1_000_000 + n) for n in range(6999)))
    assert len(body) < 256 * 1024  # under the body cap: it is the count that is refused
    caplog.set_level(logging.DEBUG)

    status, answer = await post(service, "http", body, headers=BEARER)

    assert status == 413, answer
    check_error(answer, "payload_too_large")
    assert "at most 500 receipts" in answer["error"]["message"]
    assert await parked(service) == 0
    assert await status_of(service, note) == "sent"  # nothing of it applied
    lines = [r for r in caplog.records if r.name in RECEIPT_LOGGERS]
    assert len(lines) <= 2, [r.getMessage() for r in lines]


async def test_a_full_callback_logs_one_line_and_parks_only_up_to_the_cap(
    start: StartService, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """500 unknown ids (the most one callback may carry): one INFO line; the provider's
    parked rows stop at the cap and the rest are counted as dropped."""
    monkeypatch.setattr(receipts, "MAX_PARKED_PER_PROVIDER", 200)
    service = await start(sms_service("http", token=TOKEN))
    body = http_receipts(*(f"gw-{n}" for n in range(500)))
    caplog.set_level(logging.INFO)

    status, answer = await post(service, "http", body, headers=BEARER)

    assert (status, answer) == (200, "OK")
    assert await parked(service) == 200
    lines = [r.getMessage() for r in caplog.records if r.name in RECEIPT_LOGGERS]
    assert lines == [
        "delivery callback from http: 0 applied, 0 unknown, 0 in progress, 200 parked, "
        "300 dropped"
    ]
    # The park is full: a later callback parks nothing more.
    assert (await post(service, "http", http_receipts("gw-9999"), headers=BEARER))[0] == 200
    assert await parked(service) == 200


async def test_smsc_parks_only_ids_we_can_have_issued(start: StartService) -> None:
    """SMSC echoes our notification ids: one far beyond the newest is not a real receipt."""
    service = await start(sms_service("smsc", token=TOKEN))
    newest = await seed_sent(service, "smsc", "already-has-one")
    ctype = "application/x-www-form-urlencoded"
    query = f"?secret={TOKEN}"

    for forged in (str(newest + receipts.OWN_ID_MARGIN + 1), "99999999999", "12abc", "007"):
        body = form(id=forged, status="1")
        assert await post(service, "smsc", body, content_type=ctype, query=query) == (200, "OK")
    assert await parked(service) == 0

    # The next notifications' ids (a receipt faster than our commit) are still parked.
    body = form(id=str(newest + 1), status="1")
    assert await post(service, "smsc", body, content_type=ctype, query=query) == (200, "OK")
    assert await parked(service) == 1


async def test_ids_of_a_foreign_shape_are_not_parked(start: StartService) -> None:
    service = await start(sms_service("http", token=TOKEN))
    odd = ["a b", "<script>", "x" * 65, "../../etc", "-leading-dash", "ид-1"]

    status, _ = await post(service, "http", http_receipts(*odd), headers=BEARER)

    assert status == 200
    assert await parked(service) == 0


# --------------------------------------------- finding 7: malformed input is a 4xx, no 500


async def test_a_deeply_nested_receipt_is_a_400(
    start: StartService, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: RecursionError in json.loads, a 500 with a stack trace in the log."""
    service = await start(sms_service("http", token=TOKEN), sms_service("smsc", token=TOKEN))
    deep = b"[" * 100_000 + b"]" * 100_000
    deep_object = b'{"id":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    caplog.set_level(logging.INFO)

    status, answer = await post(service, "http", deep, headers=BEARER)
    assert status == 400, answer
    check_error(answer, "invalid_json")
    status, answer = await post(service, "smsc", deep_object, query=f"?secret={TOKEN}")
    assert status == 400, answer
    # Unauthenticated, it is not even parsed.
    assert (await post(service, "http", deep))[0] == 401
    assert not [r for r in caplog.records if r.exc_info], "a stack trace was logged"


@pytest.mark.parametrize(
    "bad_id",
    ["12\x003", "gw-1\n2026-12-02 06:30:00,000 CRITICAL forged line", "\x1b[31mred", "x" * 129],
    ids=["nul", "newline", "escape", "too_long"],
)
async def test_an_id_with_control_characters_or_too_long_is_a_422(
    start: StartService, bad_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: NUL was a 500 on PostgreSQL (text cannot hold it), a newline forged a log
    line, 129 characters overflowed the column on PostgreSQL."""
    service = await start(sms_service("http", token=TOKEN), sms_service("smsc", token=TOKEN))
    note = await seed_sent(service, "http", "gw-1")
    caplog.set_level(logging.DEBUG)

    status, answer = await post(
        service, "http", http_receipts("gw-1", bad_id), headers=BEARER
    )
    assert status == 422, answer
    check_error(answer, "validation_error")
    smsc_body = form(id=bad_id, status="20")
    status, answer = await post(
        service,
        "smsc",
        smsc_body,
        content_type="application/x-www-form-urlencoded",
        query=f"?secret={TOKEN}",
    )
    assert status == 422, answer

    assert await status_of(service, note) == "sent"  # the good receipt beside it: not applied
    assert await parked(service) == 0
    assert not any("CRITICAL forged" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_reason_with_control_characters_is_stored_cleaned(start: StartService) -> None:
    """The reason is the provider's text: kept, with its NUL and newlines as spaces."""
    service = await start(sms_service("http", token=TOKEN))
    note = await seed_sent(service, "http", "gw-7")
    body = http_receipts("gw-7", reason="absent\x00subscriber\nCRITICAL")

    assert (await post(service, "http", body, headers=BEARER))[0] == 200

    assert await status_of(service, note) == "failed"
    [*_, (_, to_status, reason)] = await service.history(note)
    assert to_status == "failed"
    assert reason is not None and "\x00" not in reason and "\n" not in reason


# ------------------------------------------------------- check-config and the serve banner


def test_the_serve_banner_says_which_services_refuse_callbacks() -> None:
    settings = Settings.load(
        sms_services=[
            sms_service("smsc"),
            sms_service("smsaero", token=TOKEN),
            sms_service("smsru", api_key=API_ID),
            sms_service("http"),
        ]
    )

    banner = "\n".join(describe(settings, None))

    assert "'smsc' (smsc): delivery callbacks are refused" in banner
    assert "<http.public_url>/api/v1/providers/smsc/status?secret=<token>" in banner
    assert "'http' (http): delivery callbacks are refused" in banner
    assert "'smsaero'" not in banner and "'smsru'" not in banner


async def test_check_config_says_callbacks_are_refused_until_a_token_is_set() -> None:
    async with FakeHttpGateway(token=None) as gateway:
        entry = {"name": "main", "kind": "http", "base_url": gateway.base_url}
        without = Settings.load(sms_services=[entry])
        with_token = Settings.load(sms_services=[{**entry, "token": TOKEN}])
        refused = await check_config.check_sms_service(without, without.sms_services[0])
        fine = await check_config.check_sms_service(with_token, with_token.sms_services[0])

    assert refused.status == "ok"  # sending works; receipts posted by the gateway do not
    assert "delivery callbacks are refused until they can be authenticated: set token" in (
        refused.detail
    )
    assert "refused" not in fine.detail
    assert check_config.format_results([refused])[0].startswith("ok   sms:main")
