"""Event types in the desk: the table of the five flags (saved as `PUT
/api/v1/event-types/{code}` saves them) and the template editor with its preview.

A running Vestnik on loopback (SQLite and PostgreSQL), called with aiohttp's client as a
browser would; htmx's requests carry `HX-Request: true`, as the script sends them.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator

import pytest

from handlers.desk.config import DESK, DESK_LINKS
from tests.conftest import Service, make_settings, start_service
from tests.integration.desk_support import HTML, csrf_of, order_ready, sign_in_as_admin
from tests.integration.test_bot_support import add_manager

READY = "/desk/event-types/client_order.ready/client"
API_READY = "/api/v1/event-types/client_order.ready"
HTMX = {**HTML, "HX-Request": "true"}


@pytest.fixture
async def live(database_url: str) -> AsyncIterator[Service]:
    """Live mode without channels: a notification's status follows the flags."""
    running = await start_service(make_settings(database_url, notify={"mode": "live"}))
    try:
        yield running
    finally:
        await running.client.close()


def visible(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def segments(page: str) -> int:
    match = re.search(r'<strong class="segments">(\d+)</strong>', page)
    assert match is not None, visible(page)[-800:]
    return int(match.group(1))


def ticked(page: str, code: str) -> dict[str, bool]:
    return {
        flag: checked == " checked"
        for flag, checked in re.findall(
            rf'name="{re.escape(code)}\.(\w+)"[^>]*?( checked)?>', page
        )
    }


async def test_an_admin_ticks_a_flag_and_the_api_sees_it(live: Service) -> None:
    service = live
    csrf = await sign_in_as_admin(service)
    page = await (await service.client.get("/desk/event-types", headers=HTML)).text()
    assert page.count('<tr id="t-') == 16
    flags = ticked(page, "client_order.ready")
    assert flags["confirm_before_send"] is False and len(flags) == 5
    _, before = await service.admin("GET", "/api/v1/event-types")

    form = {
        f"{code}.{flag}": "on"
        for code in re.findall(r'<tr id="t-([\w.]+)"', page)
        for flag, on in ticked(page, code).items()
        if on
    }
    form["client_order.ready.confirm_before_send"] = "on"
    saved = await service.client.post(
        "/desk/event-types", data={**form, "csrf": csrf}, headers=HTML, allow_redirects=False
    )
    assert (saved.status, saved.headers["Location"]) == (303, "/desk/event-types?done=saved")
    _, ready = await service.admin("GET", API_READY)
    assert ready["confirm_before_send"] is True
    _, after = await service.admin("GET", "/api/v1/event-types")
    changed = [
        new["code"] for old, new in zip(before["items"], after["items"], strict=True) if old != new
    ]
    assert changed == ["client_order.ready"]
    page = await (await service.client.get("/desk/event-types?done=saved", headers=HTML)).text()
    assert ticked(page, "client_order.ready")["confirm_before_send"] is True

    # The next order ready for pickup waits for a person, as the flag says.
    notification = await order_ready(service, "ЗК-000901")
    _, detail = await service.admin("GET", f"/api/v1/notifications/{notification}")
    assert detail["status"] == "awaiting_confirmation"


async def test_the_editor_previews_as_you_type_and_saves_a_version(service: Service) -> None:
    csrf = await sign_in_as_admin(service)
    editor = await service.client.get(READY, headers=HTML)
    page = await editor.text()
    assert editor.status == 200
    assert "готов к выдаче" in page and segments(page) == 1
    assert "{{ document.number }}" in html.unescape(page)  # the variable catalogue
    assert 'hx-trigger="keyup changed delay:400ms"' in page

    long_text = "Заказ {{ document.number }} готов. " * 6  # 137 UTF-16 units: 3 parts
    typed = await service.client.post(
        READY + "/preview", data={"source": long_text, "csrf": csrf}, headers=HTMX
    )
    fragment = await typed.text()
    assert typed.status == 200 and fragment.lstrip().startswith('<div id="preview"')
    assert segments(fragment) == 3 and "ЗК-000123" in fragment
    # Without the script, the button brings the whole editor back with the preview.
    pressed = await service.client.post(
        READY + "/preview", data={"source": long_text, "csrf": csrf}, headers=HTML
    )
    assert "<textarea" in await pressed.text() and segments(await pressed.text()) == 3
    broken = await service.client.post(
        READY + "/preview",
        data={"source": "Заказ готов.\n{{ document.numbr }}", "csrf": csrf},
        headers=HTMX,
    )
    assert "Ошибка в строке 2" in visible(await broken.text())

    refused = await service.client.post(
        READY + "/save", data={"source": "Заказ {% if %}", "csrf": csrf}, headers=HTML
    )
    assert refused.status == 422 and "Не сохранено (строка 1)" in visible(await refused.text())
    _, template = await service.admin("GET", API_READY + "/templates/client")
    assert template["version"] == 0

    saved = await service.client.post(
        READY + "/save",
        data={"source": "Заказ {{ document.number }} ждёт вас.", "csrf": csrf},
        headers=HTML,
        allow_redirects=False,
    )
    assert (saved.status, saved.headers["Location"]) == (303, READY + "?done=saved")
    shown = visible(await (await service.client.get(READY + "?done=saved", headers=HTML)).text())
    assert "Сохранена версия 1" in shown and "admin:desk" in shown
    notification = await order_ready(service, "ЗК-000902")
    _, detail = await service.admin("GET", f"/api/v1/notifications/{notification}")
    assert detail["text"] == "Заказ ЗК-000902 ждёт вас."

    back = await service.client.post(
        READY + "/revert", data={"version": "0", "csrf": csrf}, headers=HTML
    )
    assert "Снова действует текст из файлов шаблонов" in visible(await back.text())
    _, template = await service.admin("GET", API_READY + "/templates/client")
    assert (template["version"], template["origin"]) == (0, "package")
    unknown = await service.client.post(
        READY + "/revert", data={"version": "7", "csrf": csrf}, headers=HTML
    )
    assert unknown.status == 422 and "has no version 7" in visible(await unknown.text())


async def test_forms_without_csrf_and_managers_change_nothing(service: Service) -> None:
    await sign_in_as_admin(service)
    for path, data in (
        ("/desk/event-types", {"client_order.ready.confirm_before_send": "on"}),
        (READY + "/save", {"source": "Чужой текст"}),
    ):
        response = await service.client.post(path, data=data, headers=HTML)
        assert response.status == 403, path
    _, ready = await service.admin("GET", API_READY)
    assert ready["confirm_before_send"] is False
    _, template = await service.admin("GET", API_READY + "/templates/client")
    assert template["version"] == 0

    service.client.session.cookie_jar.clear()
    await add_manager(service)
    link = await service.app[DESK_LINKS].issue(service.db, "M-7")
    token = link.url.removeprefix(service.app[DESK].link_base).rsplit("/", 1)[1]
    await service.client.post("/desk/link", data={"token": token}, headers=HTML)
    csrf = csrf_of(await (await service.client.get("/desk/journal", headers=HTML)).text())
    for response in (
        await service.client.get(READY, headers=HTML),
        await service.client.post(
            READY + "/save", data={"source": "Текст менеджера", "csrf": csrf}, headers=HTML
        ),
        await service.client.get("/desk/event-types/no.such/client", headers=HTML),
    ):
        assert response.status == 403
    _, template = await service.admin("GET", API_READY + "/templates/client")
    assert template["version"] == 0


async def test_an_unknown_type_or_recipient_is_a_page_not_a_traceback(service: Service) -> None:
    await sign_in_as_admin(service)
    for path in ("/desk/event-types/no.such/client", "/desk/event-types/client_order.ready/x"):
        response = await service.client.get(path, headers=HTML)
        assert response.status == 404
        assert "Такого" in await response.text()
