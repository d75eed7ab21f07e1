"""The balance page and who may open the admin pages.

The balance: each SMS service's report read now (as `GET /api/v1/balance`) and the
history of the balance job's checks as a server-drawn SVG line; a manager is refused every
admin page. A running Vestnik on loopback (SQLite and PostgreSQL) with the fake gateway.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from decimal import Decimal

import pytest

from handlers.desk.config import DESK, DESK_LINKS
from storage.ops import alerts
from storage.types import utcnow
from tests.conftest import Service
from tests.fakes.sms_http import FakeHttpGateway
from tests.integration.desk_support import HTML, csrf_of, sign_in_as_admin
from tests.integration.test_bot_support import add_manager

ADMIN_PAGES = (
    "/desk/settings",
    "/desk/event-types",
    "/desk/event-types/client_order.ready/client",
    "/desk/clients?q=C",
    "/desk/clients/C-1001",
    "/desk/sms-services",
    "/desk/sms-services/main/edit",
    "/desk/balance",
)


def visible(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


async def test_the_balance_now_and_its_history_as_a_line(
    sms_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    now = utcnow()
    # What the balance job recorded: spending down, a failed read, a top-up.
    readings = [Decimal("900"), Decimal("600"), None, Decimal("300"), Decimal("1000")]
    async with sms_service.db.transaction() as session:
        for hours_ago, value in zip((40, 30, 20, 10, 1), readings, strict=True):
            await alerts.record_check(
                session,
                provider="main",
                checked_at=now - timedelta(hours=hours_ago),
                balance=value,
                currency="RUB",
                error=None if value is not None else "auth failed",
            )
        await alerts.record_check(  # older than the chart's 30 days
            session,
            provider="main",
            checked_at=now - timedelta(days=45),
            balance=Decimal("5"),
            currency="RUB",
            error=None,
        )
    await sign_in_as_admin(sms_service)
    response = await sms_service.client.get("/desk/balance", headers=HTML)
    page = await response.text()
    assert response.status == 200
    text = visible(page)
    assert re.search(r"Баланс\s+1000(\.0+)?\s+RUB", text), text  # read from the gateway now
    assert "Состояние" in text and "не прочитан: auth failed" in text

    match = re.search(r'class="balance-line"[^>]*points="([^"]+)"', page)
    assert match is not None
    points = [tuple(map(float, pair.split(","))) for pair in match.group(1).split()]
    assert len(points) == 4  # the failed read and the old one are not drawn
    xs, ys = [x for x, _ in points], [y for _, y in points]
    assert xs == sorted(xs) and xs[0] < xs[-1]
    # SVG's y grows downwards: 900 > 600 > 300 < 1000 read as heights.
    assert ys[0] < ys[1] < ys[2] and ys[3] < ys[0]
    assert "<script" not in page.split("<main>", 1)[1]


async def test_a_balance_that_cannot_be_read_is_said_so(
    sms_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    sms_gateway.token = "changed-at-the-provider"
    await sign_in_as_admin(sms_service)
    response = await sms_service.client.get("/desk/balance", headers=HTML)
    text = visible(await response.text())
    assert response.status == 200
    assert "Баланс не прочитан" in text and "Проверок ещё не было" in text


@pytest.mark.parametrize("path", ADMIN_PAGES)
async def test_a_manager_is_refused_every_admin_page(sms_service: Service, path: str) -> None:
    await add_manager(sms_service)
    link = await sms_service.app[DESK_LINKS].issue(sms_service.db, "M-7")
    token = link.url.removeprefix(sms_service.app[DESK].link_base).rsplit("/", 1)[1]
    await sms_service.client.post("/desk/link", data={"token": token}, headers=HTML)
    journal = await (await sms_service.client.get("/desk/journal", headers=HTML)).text()
    response = await sms_service.client.get(path, headers=HTML)
    assert response.status == 403
    assert "только для администратора" in await response.text()
    posted = await sms_service.client.post(
        path.split("?")[0], data={"csrf": csrf_of(journal)}, headers=HTML
    )
    assert posted.status in (403, 405)
