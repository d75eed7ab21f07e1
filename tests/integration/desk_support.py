"""Helpers for the web desk's scenarios (no tests here): the shop's people and orders, and
signing in to a running Vestnik's desk with aiohttp's client."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import ADMIN_TOKEN, Service
from tests.events import make_event

HTML = {"Accept": "text/html"}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
CONFIRM_FIRST = {"event_types": {"client_order.ready": {"confirm_before_send": True}}}
"""Settings: orders ready for pickup wait for a person to confirm them."""

OTHER_MANAGER = {"id": "M-8", "name": "Пётр Сидоров", "phone": "+79037654321"}
OTHER_CLIENT = {
    "id": "C-2002",
    "name": "ИП Лютиков",
    "phone": "+7 916 765-43-21",
    "manager_id": "M-8",
}


async def order_ready(
    service: Service,
    number: str,
    *,
    client: dict[str, Any] | None = None,
    manager: dict[str, Any] | None = None,
) -> int:
    """The ERP says order `number` is ready; the id of the client's notification."""
    event = make_event(
        "client_order.ready", client=client, **({"manager": manager} if manager else {})
    )
    event["document"]["number"] = number
    status, body = await service.post_event(event)
    assert status == 202, body
    [note] = [n for n in body["notifications"] if n["recipient"] == "client"]
    return int(note["id"])


def csrf_of(page: str) -> str:
    match = CSRF.search(page)
    assert match is not None, page[:2000]
    return match.group(1)


async def sign_in_as_admin(service: Service, token: str = ADMIN_TOKEN) -> str:
    """Sign the service's client in with the admin token; the session's CSRF token."""
    response = await service.client.post(
        "/desk/signin", data={"token": token}, headers=HTML, allow_redirects=False
    )
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == "/desk/journal"
    page = await service.client.get("/desk/journal", headers=HTML)
    assert page.status == 200
    return csrf_of(await page.text())


async def status_of(service: Service, notification_id: int) -> str:
    status, body = await service.admin("GET", f"/api/v1/notifications/{notification_id}")
    assert status == 200, body
    return str(body["status"])
