"""The files under examples/, posted to a running Vestnik as the ERP and the README's tour
post them: every event file is accepted and journaled as its type plans, the tour's two
`send-event` commands go by SMS and then, once the client subscribed, by Telegram, and the
"fresh copy" one-liners of examples/README.md really make new events."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dispatch.catalogue import EVENT_TYPES
from tests.conftest import WEBHOOK_SECRET, Service
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram
from tests.integration.test_bot_support import say
from tests.unit.test_examples_and_docs import quick_tour, sh_blocks

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
EVENT_FILES = sorted((EXAMPLES / "events").glob("*.json"))
VESTNIK = ".venv/bin/vestnik"
TOUR_CHAT = 555_321

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def planned_recipients(event_type: str) -> list[str]:
    defaults = EVENT_TYPES[event_type].defaults
    wanted = (("client", defaults.send_to_client), ("manager", defaults.send_to_manager))
    return [recipient for recipient, on in wanted if on]


@pytest.mark.parametrize(
    "raw", [pytest.param(path.read_bytes(), id=path.stem) for path in EVENT_FILES]
)
async def test_example_event_is_accepted_and_journaled_as_its_type_plans(
    service: Service, raw: bytes
) -> None:
    event = json.loads(raw)

    status, body = await service.post_event(raw)

    assert status == 202, body
    expected = planned_recipients(event["type"])
    assert sorted(n["recipient"] for n in body["notifications"]) == expected
    status, page = await service.admin("GET", f"/api/v1/notifications?type={event['type']}")
    assert status == 200, page
    assert sorted(item["recipient"] for item in page["items"]) == expected
    for item in page["items"]:
        assert (item["event_id"], item["status"]) == (event["event_id"], "test"), item["reason"]
        # The example's own document reached the text: the template found what it reads.
        assert event["document"]["number"] in item["text"]
        assert item["segments"] >= 1


# --- the commands a user copies -----------------------------------------------------------


async def run_shell(command: str, *, cwd: Path, service: Service) -> str:
    """Run a documented command line as written, with `vestnik` being this checkout's CLI
    and its default URL and webhook secret those of the running test service."""
    command = command.replace(VESTNIK, f"{shlex.quote(sys.executable)} -m bot.cli")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "VESTNIK_HTTP__PORT": str(service.client.port),
        "VESTNIK_WEBHOOK__SECRET": WEBHOOK_SECRET,
    }
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        command,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, f"{command}: {err.decode()}"
    return out.decode()


def answer(output: str) -> tuple[int, dict[str, Any]]:
    """`vestnik send-event` prints `HTTP <status>` and the answer's JSON."""
    first, _, rest = output.partition("\n")
    match = re.fullmatch(r"HTTP (\d{3})", first)
    assert match, output
    return int(match.group(1)), json.loads(rest)


def readme_tour_posts() -> list[str]:
    return [line for line in sh_blocks(quick_tour()) if line.startswith(f"{VESTNIK} send-event ")]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder with examples/ as in a fresh clone, and no vestnik.toml of anybody's."""
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    return tmp_path


async def test_the_tour_sends_by_sms_then_by_telegram_once_the_client_subscribed(
    live_service: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway, workdir: Path
) -> None:
    """The README's tour against loopback fakes of the SMS provider and Telegram, as
    `serve --sandbox` runs it: the tour's two `send-event` lines, run as written."""
    first, second = readme_tour_posts()
    client = json.loads((EXAMPLES / "event.json").read_bytes())["client"]

    status, body = answer(await run_shell(first, cwd=workdir, service=live_service))
    assert status == 202
    [note] = body["notifications"]
    assert (note["recipient"], note["channel"]) == ("client", "sms")
    await live_service.wait_for_status(note["id"], "sent")
    [sms] = sms_gateway.sent
    assert sms.phone == "+" + re.sub(r"\D", "", client["phone"])
    assert "ЗК-000457" in sms.text

    # The client shares their phone with the bot, as the sandbox page's button does.
    await say(telegram, telegram.command(TOUR_CHAT, "/start"))
    await say(telegram, telegram.contact(TOUR_CHAT, client["phone"]))
    before = len(telegram.messages_to(TOUR_CHAT))
    status, body = answer(await run_shell(second, cwd=workdir, service=live_service))
    assert status == 202
    [note] = body["notifications"]
    assert (note["recipient"], note["channel"]) == ("client", "telegram")
    messages = await telegram.wait_for_sent(TOUR_CHAT, count=before + 1)
    assert "готов к выдаче" in (messages[-1].text or "")
    assert len(sms_gateway.sent) == 1


async def wait_for_the_next_second() -> None:
    """The one-liners stamp the id with `date +%s`: two in one second would be one event."""
    now = time.time()
    await asyncio.sleep(int(now) + 1.01 - now)


async def test_a_repeated_file_is_a_duplicate_and_the_fresh_copy_one_liners_are_new_events(
    service: Service, workdir: Path
) -> None:
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    one_liners = [line for line in sh_blocks(readme) if "/dev/stdin" in line]
    assert len(one_liners) == 2
    plain = f"{VESTNIK} send-event examples/event.json"
    original = json.loads((EXAMPLES / "event.json").read_bytes())["event_id"]

    assert answer(await run_shell(plain, cwd=workdir, service=service))[0] == 202
    status, body = answer(await run_shell(plain, cwd=workdir, service=service))
    assert (status, body["duplicate"]) == (200, True)

    seen = {original}
    for line in one_liners:
        if line.startswith("jq ") and shutil.which("jq") is None:
            continue
        await wait_for_the_next_second()
        status, body = answer(await run_shell(line, cwd=workdir, service=service))
        assert (status, body["duplicate"]) == (202, False), line
        assert body["event_id"] not in seen
        seen.add(body["event_id"])
    assert len(seen) >= 2
