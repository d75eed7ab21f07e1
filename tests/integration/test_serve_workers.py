"""`vestnik serve --workers N`: several processes on one port, one Telegram poller."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from handlers.common import signature
from tests.conftest import WEBHOOK_SECRET
from tests.events import make_event
from tests.fakes.telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(**variables: str) -> dict[str, str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("VESTNIK_")}
    return {**clean, "PYTHONPATH": str(ROOT), **variables}


def _listening_socket_inodes(port: int) -> set[str]:
    """Inodes of the TCP sockets listening on `port` (state 0A in /proc/net/tcp)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
            inodes.add(fields[9])
    return inodes


def _processes_holding(inodes: set[str]) -> set[int]:
    holders = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            links = {os.readlink(fd) for fd in (entry / "fd").iterdir()}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            holders.add(int(entry.name))
    return holders


async def _read_until(stream: asyncio.StreamReader, fragment: str) -> str:
    seen = []
    async with asyncio.timeout(60):
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError(f"{fragment!r} never printed: {''.join(seen)!r}")
            seen.append(line)
            if fragment in line:
                return "".join(seen)


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_two_processes_share_the_port_and_only_one_polls_telegram(
    database_url: str, tmp_path: Path
) -> None:
    port = _free_port()
    async with FakeTelegram() as telegram:
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "serve",
            "--workers",
            "2",
            cwd=tmp_path,
            env=_environment(
                VESTNIK_DATABASE__URL=database_url,
                VESTNIK_HTTP__PORT=str(port),
                VESTNIK_WEBHOOK__SECRET=WEBHOOK_SECRET,
                VESTNIK_TELEGRAM__TOKEN=telegram.token,
                VESTNIK_TELEGRAM__API_BASE=telegram.base_url,
            ),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert server.stdout is not None
            started = await _read_until(server.stdout, "server processes")
            assert "Started 2 server processes" in started
            await _read_until(server.stdout, f"http://127.0.0.1:{port}")
            # Both processes listen on the port, each with its own socket (SO_REUSEPORT).
            for _ in range(100):
                holders = _processes_holding(_listening_socket_inodes(port))
                if len(holders) == 2:
                    break
                await asyncio.sleep(0.1)
            assert len(holders) == 2
            assert server.pid not in holders

            # The ERP posts over fresh connections; whichever process takes one, all land.
            connector = aiohttp.TCPConnector(force_close=True)
            async with aiohttp.ClientSession(connector=connector) as http:
                statuses = []
                for index in range(20):
                    body = json.dumps(
                        make_event("client_order.ready", event_id=f"workers-{index}"),
                        ensure_ascii=False,
                    ).encode()
                    headers = {
                        "Content-Type": "application/json",
                        signature.HEADER: signature.sign(WEBHOOK_SECRET, body),
                    }
                    async with http.post(
                        f"http://127.0.0.1:{port}/api/v1/events", data=body, headers=headers
                    ) as reply:
                        statuses.append(reply.status)
            assert statuses == [202] * 20

            # One long poll at a time (a second poller would end the first with 409),
            # and a client's /start is answered exactly once.
            telegram.push_update(telegram.command(555, "start"))
            for _ in range(100):
                if telegram.messages_to(555):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(2)
            assert len(telegram.messages_to(555)) == 1
            assert telegram.requests["getUpdates"] >= 2
            assert [call for call in telegram.calls if call.status == 409] == []
        finally:
            server.send_signal(signal.SIGINT)
            _, err = await asyncio.wait_for(server.communicate(), 60)
    assert server.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()
    assert _processes_holding(_listening_socket_inodes(port)) == set()


def test_several_processes_on_sqlite_are_refused_with_the_fix(tmp_path: Path) -> None:
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", "--workers", "2"],
        cwd=tmp_path,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "vestnik: --workers 2 needs PostgreSQL: SQLite has one writer, so more processes "
        "only wait for each other (set database.url to postgresql+asyncpg://…)"
    ]
    assert not (tmp_path / "vestnik.db").exists()
