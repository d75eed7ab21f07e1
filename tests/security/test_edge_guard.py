"""Who may call the HTTP API, and from where (issue 11, findings 2, 3, 7 and 10).

Every scenario runs against a real Vestnik on a loopback port: requests relayed by a proxy
lose the loopback trust, browser-borne requests (cross-site, DNS rebinding, `text/plain`
bodies) are refused before any view runs, malformed signature headers are 401s, tokens and
secrets have a minimum length and an exposed server needs an admin token.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.settings import ConfigError, Settings
from handlers.common import signature
from storage.models import Event, Notification, TelegramUpdate
from tests.conftest import (
    ADMIN_TOKEN,
    WEBHOOK_SECRET,
    Service,
    make_settings,
    start_service,
)
from tests.events import make_event
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram
from tests.integration.test_bot_support import STRANGER_CHAT
from tests.integration.test_bot_webhook import SECRET, start_webhook_service, webhook_url

PROXY_HEADERS = (
    {"X-Forwarded-For": "198.51.100.7"},
    {"X-Forwarded-Host": "vestnik.example.com"},
    {"X-Forwarded-Proto": "https"},
    {"Forwarded": "for=198.51.100.7;proto=https"},
    {"X-Real-IP": "198.51.100.7"},
    {"Via": "1.1 caddy"},
)
METRICS_TOKEN = "metrics-scrape-token-0123"


def check_error(body: Any, code: str) -> dict[str, Any]:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    error: dict[str, Any] = body["error"]
    return error


async def count(service: Service, model: type) -> int:
    async with service.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def raw_request(service: Service, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send bytes as they are (a missing Host, undecodable header bytes, a path spelled
    with %-escapes); returns the status and the body of the answer."""
    server = service.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(head + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), payload


def request_head(method: str, path: str, *headers: bytes, host: bytes = b"127.0.0.1") -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + host, *headers]
    return b"\r\n".join([*lines, b"Connection: close", b"", b""])


@pytest.fixture
async def open_service(database_url: str) -> AsyncIterator[Service]:
    """Test mode with neither an admin token nor a webhook secret: loopback trust."""
    running = await start_service(
        make_settings(database_url, admin={"token": None}, webhook={"secret": None})
    )
    try:
        yield running
    finally:
        await running.client.close()


# --------------------------------------------------------------------------- finding 2


async def test_proxy_headers_drop_the_loopback_trust_of_the_admin_api(
    open_service: Service,
) -> None:
    ok = await open_service.client.get("/api/v1/notifications")
    assert ok.status == 200, await ok.text()  # direct loopback: still trusted
    for headers in PROXY_HEADERS:
        response = await open_service.client.get("/api/v1/notifications", headers=headers)
        assert response.status == 401, headers
        error = check_error(await response.json(), "unauthorized")
        # The answer does not say that no token is configured (the log does).
        assert "configured" not in error["message"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        put = await open_service.client.put(
            "/api/v1/settings", json={"mode": "off"}, headers=headers
        )
        assert put.status == 401, headers
    status, settings = await open_service.admin("GET", "/api/v1/settings", token=None)
    assert status == 200 and settings["mode"] == "test"


async def test_proxy_headers_drop_the_loopback_trust_of_unsigned_events(
    open_service: Service,
) -> None:
    for number, headers in enumerate(PROXY_HEADERS):
        status, body = await open_service.post_event(
            make_event(event_id=f"proxied-{number}"), secret=None, headers=headers
        )
        assert status == 401, headers
        error = check_error(body, "invalid_signature")
        assert "secret" not in error["message"] and "loopback" not in error["message"]
    assert await count(open_service, Event) == 0
    status, _ = await open_service.post_event(make_event(event_id="direct"), secret=None)
    assert status == 202


# --------------------------------------------------------------------------- finding 3


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
     "multipart/form-data; boundary=x", "application/json; charset=latin-1"],
)  # fmt: skip
async def test_a_page_cannot_post_a_test_sms_as_a_simple_request(
    sms_service: Service, sms_gateway: FakeHttpGateway, content_type: str
) -> None:
    # What a web page may send cross-origin without a preflight (and a non-UTF-8 charset).
    response = await sms_service.client.post(
        "/api/v1/test-sms",
        data=json.dumps({"phone": "+79161234567"}).encode(),
        headers={"Content-Type": content_type, "Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status == 415
    check_error(await response.json(), "unsupported_media_type")
    assert sms_gateway.sent == [] and sms_gateway.requests == 0
    assert await count(sms_service, Notification) == 0


async def test_admin_bodies_need_json_but_empty_posts_and_outside_callers_do_not(
    service: Service,
) -> None:
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    put = await service.client.put(
        "/api/v1/settings", data=b'{"mode": "off"}', headers={**auth, "Content-Type": "text/plain"}
    )
    assert put.status == 415
    status, settings = await service.admin("GET", "/api/v1/settings")
    assert status == 200 and settings["mode"] == "test"
    # No body, nothing to parse: the guard lets it through to the view.
    resend = await service.client.post(
        "/api/v1/notifications/999/resend", headers={**auth, "Content-Type": "text/plain"}
    )
    assert resend.status != 415, await resend.text()
    # Outside callers keep their own rules: the ERP webhook answers its own 415.
    event = await service.client.post(
        "/api/v1/events", data=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert event.status == 415


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:1"},  # another local origin (another port)
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
async def test_cross_site_browser_requests_are_refused(
    service: Service, headers: dict[str, str]
) -> None:
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for method, path in (("GET", "/api/v1/notifications"), ("POST", "/api/v1/jobs/email/run")):
        response = await service.client.request(method, path, headers={**auth, **headers})
        assert response.status == 403, (method, path)
        check_error(await response.json(), "forbidden")
    status, _ = await service.post_event(make_event(event_id="x-site"), headers=headers)
    assert status == 403
    assert await count(service, Event) == 0


async def test_same_origin_browser_requests_pass(service: Service) -> None:
    own = str(service.client.make_url("")).rstrip("/")
    for headers in (
        {"Origin": own, "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},  # typed into the address bar
    ):
        response = await service.client.get(
            "/api/v1/settings", headers={"Authorization": f"Bearer {ADMIN_TOKEN}", **headers}
        )
        assert response.status == 200, headers


@pytest.mark.parametrize(
    "host", ["rebind.evil.example", "rebind.evil.example:8080", "10.0.0.1", "localhost.evil"]
)
async def test_a_foreign_host_name_is_misdirected(service: Service, host: str) -> None:
    # DNS rebinding: the page's own name now resolves to 127.0.0.1.
    for path in ("/api/v1/notifications", "/healthz"):
        response = await service.client.get(
            path, headers={"Host": host, "Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert response.status == 421, (host, path)
        check_error(await response.json(), "misdirected_request")
    status, _ = await service.post_event(make_event(event_id="rebound"), headers={"Host": host})
    assert status == 421
    assert await count(service, Event) == 0


async def test_a_missing_or_broken_host_is_a_400(service: Service) -> None:
    # HTTP/1.0 may leave Host out (aiohttp itself refuses an HTTP/1.1 request without it).
    status, body = await raw_request(service, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert status == 400
    check_error(json.loads(body), "bad_request")
    status, body = await raw_request(service, request_head("GET", "/healthz", host=b"a:b:c"))
    assert status == 400


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST.", "127.0.0.2", "[::1]:8080"])
async def test_loopback_names_are_served(service: Service, host: str) -> None:
    response = await service.client.get("/healthz", headers={"Host": host})
    assert response.status == 200, host


async def test_configured_hosts_are_served(database_url: str) -> None:
    running = await start_service(
        make_settings(
            database_url,
            http={"public_url": "https://Vestnik.Example.com/", "allowed_hosts": ["vestnik"]},
        )
    )
    try:
        for host in ("vestnik.example.com", "vestnik:8080", "VESTNIK"):
            response = await running.client.get("/healthz", headers={"Host": host})
            assert response.status == 200, host
        # The public site's own pages may call the API (Origin of public_url).
        response = await running.client.get(
            "/api/v1/settings",
            headers={
                "Host": "vestnik.example.com",
                "Origin": "https://vestnik.example.com",
                "Authorization": f"Bearer {ADMIN_TOKEN}",
            },
        )
        assert response.status == 200
        response = await running.client.get("/healthz", headers={"Host": "other.example.com"})
        assert response.status == 421
    finally:
        await running.client.close()


# --------------------------------------------------------------------------- finding 7


async def post_with_header(service: Service, header: bytes) -> tuple[int, Any]:
    body = json.dumps(make_event(event_id="sig-edge")).encode()
    head = request_head(
        "POST",
        "/api/v1/events",
        b"Content-Type: application/json",
        b"Content-Length: " + str(len(body)).encode(),
        b"X-Vestnik-Signature: " + header,
    )
    status, payload = await raw_request(service, head, body)
    return status, json.loads(payload)


async def test_malformed_signature_headers_are_401_never_500(service: Service) -> None:
    now = int(time.time())
    good = signature.compute(WEBHOOK_SECRET, now, b"other body")
    headers = [
        f"t={now},v1=é".encode(),  # non-ASCII: compare_digest raised TypeError
        f"t={now},v1=".encode() + b"\xff\xfe" * 32,  # not even UTF-8
        b"t=" + b"9" * 4000 + f",v1={good}".encode(),  # OverflowError in the window check
        b"t=" + b"1" * 13 + f",v1={good}".encode(),
        f"t={now},v1={good[:-1]}".encode(),  # 63 hex digits
        f"t={now},v1={good}0".encode(),  # 65
        f"t={now},v1={'g' * 64}".encode(),
        f"t=+{now},v1={good}".encode(),
        f"t={now:_},v1={good}".encode(),  # int() takes underscores
        "t=١٢٣,v1={good}".encode(),  # int() takes Arabic-Indic digits
    ]
    for header in headers:
        status, body = await post_with_header(service, header)
        assert status == 401, header[:80]
        check_error(body, "invalid_signature")
    assert await count(service, Event) == 0
    # The same path still takes a good signature.
    raw = json.dumps(make_event(event_id="sig-edge")).encode()
    status, _ = await post_with_header(service, signature.sign(WEBHOOK_SECRET, raw).encode())
    assert status == 202


async def test_undecodable_bearer_tokens_are_401_never_500(service: Service) -> None:
    for token in (b"\xff\xfe", "é".encode() * 8):
        head = request_head("GET", "/api/v1/settings", b"Authorization: Bearer " + token)
        status, body = await raw_request(service, head)
        assert status == 401, token
        check_error(json.loads(body), "unauthorized")


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_non_ascii_telegram_secret_header_is_401_never_500(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    service = await start_webhook_service(
        database_url, telegram, sms_gateway, webhook_secret=SECRET
    )
    try:
        path = webhook_url(service).split(str(service.client.server.port), 1)[1]
        update = json.dumps(telegram.command(STRANGER_CHAT, "/start")).encode()
        for secret in (b"\xff\xfe", SECRET.encode() + "é".encode()):
            head = request_head(
                "POST",
                path,
                b"Content-Type: application/json",
                b"Content-Length: " + str(len(update)).encode(),
                b"X-Telegram-Bot-Api-Secret-Token: " + secret,
            )
            status, body = await raw_request(service, head, update)
            assert status == 401, secret
            check_error(json.loads(body), "unauthorized")
        assert await count(service, TelegramUpdate) == 0
    finally:
        await service.client.close()


# --------------------------------------------------------------------------- finding 10


async def test_metrics_can_be_protected_whatever_the_path_spelling(database_url: str) -> None:
    running = await start_service(make_settings(database_url, metrics={"token": METRICS_TOKEN}))
    try:
        for path in (b"/metrics", b"/%6Detrics", b"/%6d%65trics"):
            status, body = await raw_request(running, request_head("GET", path.decode()))
            assert status == 401, path
            check_error(json.loads(body), "unauthorized")
            wrong = request_head("GET", path.decode(), b"Authorization: Bearer wrong-token")
            assert (await raw_request(running, wrong))[0] == 401
            right = request_head(
                "GET", path.decode(), f"Authorization: Bearer {METRICS_TOKEN}".encode()
            )
            status, body = await raw_request(running, right)
            assert status == 200, path
            assert b"vestnik_" in body
        # The OpenAPI document stays public: it describes routes, it holds no data.
        assert (await running.client.get("/api/v1/openapi.json")).status == 200
    finally:
        await running.client.close()


async def test_refusals_do_not_say_which_secrets_are_missing(open_service: Service) -> None:
    proxied = {"X-Forwarded-For": "198.51.100.7"}
    admin = await open_service.client.get("/api/v1/settings", headers=proxied)
    event = await open_service.client.post(
        "/api/v1/events", json=make_event(event_id="leak"), headers=proxied
    )
    for response in (admin, event):
        message = (await response.json())["error"]["message"]
        assert response.status == 401
        assert "configured" not in message and "no webhook secret" not in message


# --------------------------------------------------------------------------- settings


def one_line_refusal(**sections: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        Settings.load(**sections)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "sections",
    [
        {"notify": {"mode": "live"}, "webhook": {"secret": WEBHOOK_SECRET}},
        {"http": {"public_url": "https://vestnik.example.com"}},
        {"http": {"host": "0.0.0.0"}},
        {"http": {"host": "192.0.2.10"}},
    ],
)
def test_an_exposed_server_needs_an_admin_token(sections: dict[str, Any]) -> None:
    message = one_line_refusal(**sections)
    assert "admin.token" in message and "VESTNIK_ADMIN__TOKEN" in message
    assert Settings.load(**sections, admin={"token": ADMIN_TOKEN}).admin.token == ADMIN_TOKEN


def test_a_local_test_server_needs_no_admin_token() -> None:
    for host in ("127.0.0.1", "localhost", "::1"):
        assert Settings.load(http={"host": host}).admin.token is None
    assert Settings.load(admin={"token": ""}).admin.token is None  # `VAR=` in a .env


@pytest.mark.parametrize(
    ("sections", "variable"),
    [
        ({"admin": {"token": "short-token"}}, "VESTNIK_ADMIN__TOKEN"),
        ({"webhook": {"secret": "s3cret"}}, "VESTNIK_WEBHOOK__SECRET"),
        ({"telegram": {"webhook_secret": "s3cret-Token_1"}}, "VESTNIK_TELEGRAM__WEBHOOK_SECRET"),
        ({"metrics": {"token": "x" * 15}}, "VESTNIK_METRICS__TOKEN"),
    ],
)
def test_short_tokens_and_secrets_are_refused_at_load(
    sections: dict[str, Any], variable: str
) -> None:
    message = one_line_refusal(**sections)
    assert variable in message and "at least 16 characters" in message


def test_vestnik_serve_in_live_mode_without_an_admin_token_says_so_and_exits_2(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "VESTNIK_NOTIFY__MODE": "live",
        "VESTNIK_WEBHOOK__SECRET": WEBHOOK_SECRET,
    }
    env.pop("VESTNIK_ADMIN__TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "admin.token" in lines[0] and "VESTNIK_ADMIN__TOKEN" in lines[0]
    assert "Traceback" not in done.stderr
