"""Slow clients and split bodies (issue 11, findings 5 and 6), with raw sockets against a
running server: the tests' server is built by `bot.http_server.make_runner`, as `vestnik
serve` builds its own, and one test runs `vestnik serve` itself under a low open-file limit.

Before: a connection that stopped mid-headers or mid-body stayed open for an hour (aiohttp's
keep-alive default) or forever; with the file limit reached `/healthz` died and the log
filled with "Too many open files"; a receipt whose body came in two TCP segments was cut
to its first one (`request.content.read(n)`) and lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.http_server import GuardedAppRunner
from handlers.common import signature
from storage.models import Event
from tests.conftest import (
    ADMIN_TOKEN,
    WEBHOOK_SECRET,
    Service,
    make_settings,
    start_service,
)
from tests.events import make_event
from tests.fakes.sms_http import FakeHttpGateway
from tests.security.test_abuse import check_error, count

HEADER_TIMEOUT = 0.5
BODY_TIMEOUT = 0.5
KEEPALIVE_TIMEOUT = 0.5
# Far above every deadline under test: reaching it means the server never let go.
NEVER = 5.0
RECEIPT_TOKEN = "receipt-token-0123456789"

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter


# --------------------------------------------------------------------------- helpers


@contextlib.asynccontextmanager
async def running(database_url: str, **sections: Any) -> AsyncIterator[Service]:
    service = await start_service(make_settings(database_url, **sections))
    try:
        yield service
    finally:
        await service.client.close()


def address(service: Service) -> tuple[str, int]:
    port = service.client.port
    assert port is not None
    return "127.0.0.1", port


async def connect(target: tuple[str, int]) -> tuple[Reader, Writer]:
    return await asyncio.open_connection(*target)


async def seconds_until_closed(reader: Reader, *, within: float = NEVER) -> float:
    """How long until the server closes the connection (EOF or reset); fails after `within`."""
    started = time.monotonic()

    async def drain() -> None:
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass

    try:
        await asyncio.wait_for(drain(), within)
    except TimeoutError:
        raise AssertionError(f"the server kept the connection open for {within} s") from None
    return time.monotonic() - started


async def read_response(reader: Reader, *, within: float = NEVER) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length body: (status, body)."""

    async def read() -> tuple[int, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:] if line)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        return status, body

    try:
        return await asyncio.wait_for(read(), within)
    except TimeoutError:
        raise AssertionError(f"no answer within {within} s") from None


def request_head(
    method: str, path: str, headers: dict[str, str], *, content_length: int | None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def send_in_two_segments(
    target: tuple[str, int], head: bytes, body: bytes, *, pause: float = 0.2
) -> tuple[int, bytes]:
    """Headers and the first half of the body, a pause, then the second half."""
    reader, writer = await connect(target)
    try:
        half = len(body) // 2
        writer.write(head + body[:half])
        await writer.drain()
        await asyncio.sleep(pause)
        writer.write(body[half:])
        await writer.drain()
        return await read_response(reader)
    finally:
        writer.close()


async def open_slow_connections(target: tuple[str, int], n: int) -> list[tuple[Reader, Writer]]:
    """`n` connections that each sent half a request head and then nothing."""
    connections = []
    for _ in range(n):
        reader, writer = await connect(target)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Ag")
        connections.append((reader, writer))
    # At its connection cap the server closes the oldest idle ones, possibly before their
    # bytes are flushed: a reset here is a connection the server has already shed.
    drained = await asyncio.gather(
        *(writer.drain() for _, writer in connections), return_exceptions=True
    )
    for outcome in drained:
        if isinstance(outcome, BaseException) and not isinstance(outcome, ConnectionError):
            raise outcome
    return connections


def is_closed(reader: Reader) -> bool:
    return reader.at_eof() or reader.exception() is not None


async def healthz_latency(target: tuple[str, int], *, within: float = NEVER) -> float:
    started = time.monotonic()
    reader, writer = await asyncio.wait_for(connect(target), within)
    try:
        writer.write(request_head("GET", "/healthz", {"Connection": "close"}, content_length=None))
        status, body = await read_response(reader, within=within)
    finally:
        writer.close()
    assert status == 200, body
    return time.monotonic() - started


def guard_of(service: Service) -> Any:
    runner = service.client.server.runner
    assert isinstance(runner, GuardedAppRunner) and runner.guard is not None
    return runner.guard


def sms_service(base_url: str = "http://127.0.0.1:9/sms") -> dict[str, Any]:
    return {
        "name": "main",
        "kind": "http",
        "base_url": base_url,
        "token": RECEIPT_TOKEN,
        "sender": "PARTS",
    }


def receipt_path(token: str = RECEIPT_TOKEN) -> str:
    return f"/api/v1/providers/main/status?secret={token}"


# --------------------------------------------------------------------------- headers


async def test_half_a_request_head_is_cut_off_after_the_header_timeout(database_url: str) -> None:
    async with running(database_url, http={"header_timeout_seconds": HEADER_TIMEOUT}) as service:
        reader, writer = await connect(address(service))
        writer.write(b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        await writer.drain()

        held = await seconds_until_closed(reader)

        writer.close()
        assert HEADER_TIMEOUT * 0.8 <= held <= HEADER_TIMEOUT + 1.0, held
        assert guard_of(service).header_timeouts == 1


async def test_a_silent_connection_is_cut_off_after_the_header_timeout(database_url: str) -> None:
    async with running(database_url, http={"header_timeout_seconds": HEADER_TIMEOUT}) as service:
        reader, writer = await connect(address(service))
        held = await seconds_until_closed(reader)
        writer.close()
        assert held <= HEADER_TIMEOUT + 1.0, held


async def test_a_trickled_head_is_cut_off_at_the_deadline_not_per_byte(database_url: str) -> None:
    """One byte every 0.1 s: each byte is progress, but the head as a whole is late."""
    async with running(database_url, http={"header_timeout_seconds": HEADER_TIMEOUT}) as service:
        reader, writer = await connect(address(service))
        started = time.monotonic()
        with contextlib.suppress(ConnectionError):
            for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
                if is_closed(reader) or writer.is_closing():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.1)
                if time.monotonic() - started > NEVER:
                    raise AssertionError("a trickling client was never cut off")
        await seconds_until_closed(reader)
        writer.close()
        assert time.monotonic() - started <= HEADER_TIMEOUT + 1.0


async def test_an_idle_keep_alive_connection_closes_after_the_keepalive_timeout(
    database_url: str,
) -> None:
    async with running(
        database_url,
        http={"keepalive_timeout_seconds": KEEPALIVE_TIMEOUT, "header_timeout_seconds": 30},
    ) as service:
        reader, writer = await connect(address(service))
        writer.write(request_head("GET", "/healthz", {}, content_length=None))
        status, _ = await read_response(reader)
        assert status == 200

        held = await seconds_until_closed(reader)

        writer.close()
        assert held <= KEEPALIVE_TIMEOUT + 1.0, held


async def test_the_next_request_on_a_kept_alive_connection_has_its_own_header_deadline(
    database_url: str,
) -> None:
    """Keep-alive 30 s, header deadline 0.5 s: a second request started and left half-sent
    is cut off at the header deadline, not after the keep-alive timeout."""
    async with running(
        database_url,
        http={"keepalive_timeout_seconds": 30, "header_timeout_seconds": HEADER_TIMEOUT},
    ) as service:
        reader, writer = await connect(address(service))
        writer.write(request_head("GET", "/healthz", {}, content_length=None))
        assert (await read_response(reader))[0] == 200
        await asyncio.sleep(HEADER_TIMEOUT * 1.5)  # idle: only the keep-alive timeout applies
        assert not is_closed(reader)
        writer.write(b"GET /healthz HTTP/1.1\r\nHo")
        await writer.drain()

        held = await seconds_until_closed(reader)

        writer.close()
        assert held <= HEADER_TIMEOUT + 1.0, held


async def test_healthz_answers_while_200_slow_connections_are_open(database_url: str) -> None:
    header_timeout = 2.0
    async with running(database_url, http={"header_timeout_seconds": header_timeout}) as service:
        target = address(service)
        baseline = max([await healthz_latency(target) for _ in range(5)])
        started = time.monotonic()
        slow = await open_slow_connections(target, 200)
        await asyncio.sleep(0.1)
        assert guard_of(service).open_connections >= 200

        latencies = [await healthz_latency(target, within=1.0) for _ in range(20)]

        assert max(latencies) < 0.5, latencies
        # …and every slow one is gone soon after the header deadline.
        await asyncio.wait_for(
            asyncio.gather(*(seconds_until_closed(reader) for reader, _ in slow)), NEVER
        )
        all_closed_after = time.monotonic() - started
        for _, writer in slow:
            writer.close()
        assert all_closed_after <= header_timeout + 1.5, all_closed_after
        assert guard_of(service).header_timeouts == 200
        print(
            f"\n200 slow connections: /healthz {baseline * 1000:.1f} ms before, "
            f"max {max(latencies) * 1000:.1f} ms while open; all closed "
            f"{all_closed_after:.2f} s after opening (header timeout {header_timeout} s)"
        )


async def test_at_the_connection_cap_the_oldest_slow_connection_makes_room(
    database_url: str,
) -> None:
    cap = 16
    async with running(
        database_url, http={"max_connections": cap, "header_timeout_seconds": 30}
    ) as service:
        target = address(service)
        slow = await open_slow_connections(target, 50)
        await asyncio.sleep(0.2)

        latencies = [await healthz_latency(target, within=1.0) for _ in range(10)]

        guard = guard_of(service)
        assert guard.open_connections <= cap
        assert guard.evicted >= 50 - cap
        assert guard.refused == 0
        still_open = [reader for reader, _ in slow if not is_closed(reader)]
        assert len(still_open) < cap
        assert max(latencies) < 0.5, latencies
        for _, writer in slow:
            writer.close()


# --------------------------------------------------------------------------- bodies


def _erp_request(
    body: bytes, *, content_length: int | None = None, chunked: bool = False
) -> bytes:
    headers = {
        "Content-Type": "application/json",
        signature.HEADER: signature.sign(WEBHOOK_SECRET, body),
    }
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
        return request_head("POST", "/api/v1/events", headers, content_length=None)
    length = len(body) if content_length is None else content_length
    return request_head("POST", "/api/v1/events", headers, content_length=length)


def _admin_head(content_length: int) -> bytes:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {ADMIN_TOKEN}"}
    return request_head("PUT", "/api/v1/settings", headers, content_length=content_length)


def _receipt_head(content_length: int) -> bytes:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {RECEIPT_TOKEN}"}
    return request_head("POST", receipt_path(), headers, content_length=content_length)


BODY_ROUTES: dict[str, Callable[[int], bytes]] = {
    "erp_webhook": lambda n: request_head(
        "POST",
        "/api/v1/events",
        {"Content-Type": "application/json", signature.HEADER: "t=1,v1=" + "0" * 64},
        content_length=n,
    ),
    "receipts": _receipt_head,
    "admin_json": _admin_head,
}


@pytest.mark.parametrize("route", list(BODY_ROUTES))
async def test_half_a_body_is_answered_408_after_the_body_timeout_and_closed(
    database_url: str, route: str
) -> None:
    async with running(
        database_url,
        http={"body_timeout_seconds": BODY_TIMEOUT},
        sms_services=[sms_service()],
    ) as service:
        reader, writer = await connect(address(service))
        started = time.monotonic()
        writer.write(BODY_ROUTES[route](200) + b'{"notify": {"mode": "te')
        await writer.drain()

        status, body = await read_response(reader)
        answered = time.monotonic() - started
        closed = await seconds_until_closed(reader, within=1.0)

        writer.close()
        assert status == 408, body
        check_error(json.loads(body), "request_timeout")
        assert BODY_TIMEOUT * 0.8 <= answered <= BODY_TIMEOUT + 1.0, answered
        assert closed < 0.5, closed  # no lingering for the rest of a body that is not coming


async def test_a_body_cut_short_by_a_hang_up_is_no_500(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with running(database_url) as service:
        raw = json.dumps(make_event(event_id="cut-short")).encode()
        reader, writer = await connect(address(service))
        writer.write(_erp_request(raw) + raw[: len(raw) // 2])
        await writer.drain()
        writer.write_eof()  # the client hangs up mid-body

        await seconds_until_closed(reader)

        writer.close()
        await asyncio.sleep(0.1)
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
        assert await count(service, Event) == 0


async def test_an_event_in_two_tcp_segments_is_accepted_whole(service: Service) -> None:
    raw = json.dumps(make_event(event_id="two-segments"), ensure_ascii=False).encode()

    status, body = await send_in_two_segments(address(service), _erp_request(raw), raw)

    assert status == 202, body
    assert json.loads(body)["event_id"] == "two-segments"
    assert await count(service, Event) == 1


async def test_a_chunked_event_in_two_segments_is_accepted_and_over_the_cap_is_413(
    service: Service,
) -> None:
    raw = json.dumps(make_event(event_id="chunked"), ensure_ascii=False).encode()
    half = len(raw) // 2
    chunked = b"".join(
        f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (raw[:half], raw[half:])
    )
    status, body = await send_in_two_segments(
        address(service), _erp_request(raw, chunked=True), chunked + b"0\r\n\r\n"
    )
    assert status == 202, body

    big = b"x" * (service.settings.webhook.max_body_bytes + 1)
    reader, writer = await connect(address(service))
    writer.write(_erp_request(big, chunked=True))
    writer.write(f"{len(big):x}\r\n".encode() + big + b"\r\n0\r\n\r\n")
    status, body = await read_response(reader)
    writer.close()
    assert status == 413
    check_error(json.loads(body), "payload_too_large")


@pytest.fixture
async def receipt_service(
    database_url: str, sms_gateway: FakeHttpGateway
) -> AsyncIterator[tuple[Service, FakeHttpGateway]]:
    """Live SMS through the fake gateway, whose receipts carry a token."""
    from tests.conftest import FAST_DELIVERY

    sms_gateway.token = RECEIPT_TOKEN
    settings = make_settings(
        database_url,
        notify={"mode": "live"},
        sms_services=[{**sms_service(sms_gateway.base_url), "rate_per_second": 1000}],
        delivery=FAST_DELIVERY,
    )
    service = await start_service(settings)
    try:
        yield service, sms_gateway
    finally:
        await service.client.close()


async def test_a_receipt_in_two_tcp_segments_is_applied_in_full(
    receipt_service: tuple[Service, FakeHttpGateway],
) -> None:
    service, gateway = receipt_service
    status, accepted = await service.post_event(make_event(event_id="receipt-split"))
    assert status == 202, accepted
    [note] = accepted["notifications"]
    row = await service.wait_for_status(note["id"], "sent")
    pmid = row.provider_message_id or ""
    gateway.deliver(pmid)
    # Padding makes the first segment end well inside the JSON (as a slow link would).
    body = json.dumps({"id": pmid, "status": "delivered", "reason": "delivered " * 40}).encode()

    status, reply = await send_in_two_segments(address(service), _receipt_head(len(body)), body)

    assert status == 200, reply
    delivered = await service.wait_for_status(note["id"], "delivered", within=3.0)
    assert delivered.delivered_at is not None


# --------------------------------------------------------------------------- vestnik serve


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _low_file_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return apply


async def _wait_for_banner(process: asyncio.subprocess.Process) -> None:
    assert process.stdout is not None
    while True:
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        if not line:
            raise AssertionError("vestnik serve exited before listening")
        if b"listening on" in line:
            return


async def test_vestnik_serve_under_a_low_file_limit_keeps_answering_healthz(
    database_url: str, tmp_path: Path
) -> None:
    """`vestnik serve` with 256 open files at most, against 400 slow connections (before:
    accept() failed with EMFILE, /healthz never answered and every retry logged
    "Too many open files")."""
    port = _free_port()
    vestnik = Path(sys.executable).with_name("vestnik")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VESTNIK_")},
        "VESTNIK_DATABASE__URL": database_url,
        "VESTNIK_HTTP__PORT": str(port),
        "VESTNIK_HTTP__HEADER_TIMEOUT_SECONDS": "30",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            str(vestnik),
            "serve",
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=stderr,
            preexec_fn=_low_file_limit(256),
        )
        slow: list[tuple[Reader, Writer]] = []
        try:
            await _wait_for_banner(process)
            target = ("127.0.0.1", port)
            slow = await open_slow_connections(target, 400)
            await asyncio.sleep(0.5)

            latencies = [await healthz_latency(target, within=2.0) for _ in range(10)]

            still_open = sum(1 for reader, _ in slow if not is_closed(reader))
        finally:
            for _, writer in slow:
                writer.close()
            process.terminate()
            await asyncio.wait_for(process.wait(), 20)
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "Too many open files" not in text
    assert max(latencies) < 1.0, latencies
    assert still_open <= 256 - 128, still_open
    print(
        f"\nvestnik serve, 256 files, 400 slow connections: {still_open} kept open, "
        f"/healthz max {max(latencies) * 1000:.1f} ms, "
        f"{text.count('Too many open files')} 'Too many open files' lines"
    )


# --------------------------------------------------------------------------- compose


def test_compose_publishes_only_the_proxy_and_caddy_has_timeouts() -> None:
    compose = yaml.safe_load((Path(__file__).parents[2] / "docker-compose.yml").read_text())
    published = {name for name, service in compose["services"].items() if "ports" in service}
    assert published == {"proxy"}, "the app port must only be reached through the proxy"
    caddyfile = compose["configs"]["caddyfile"]["content"]
    for option in ("read_header", "read_body", "idle"):
        assert option in caddyfile, option
    # The proxy drops idle upstream connections before the app does (no request is sent
    # on a connection the app is closing).
    assert "keepalive 30s" in caddyfile

