"""Clients in the desk: search, the card's per-type sends and own texts (stored as
`PUT /api/v1/clients/{id}` stores them), and the Telegram deep link with its QR code that
a client scans to subscribe.

A running Vestnik on loopback (SQLite and PostgreSQL), called with aiohttp's client as a
browser would; the live one talks to the loopback Telegram Bot API.
"""

from __future__ import annotations

import html
import re

import segno

from tests.conftest import Service
from tests.fakes.telegram import FakeTelegram
from tests.integration.desk_support import (
    HTML,
    OTHER_CLIENT,
    OTHER_MANAGER,
    order_ready,
    sign_in_as_admin,
)
from tests.integration.test_bot_support import CLIENT_CHAT, say

CARD = "/desk/clients/C-1001"
OWN = CARD + "/templates/client_order.ready/template_client"
HTMX = {**HTML, "HX-Request": "true"}


def visible(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


async def found(service: Service, query: str) -> list[str]:
    response = await service.client.get("/desk/clients", params={"q": query}, headers=HTML)
    assert response.status == 200
    return re.findall(r'<a href="/desk/clients/([^"]+)"><code>', await response.text())


async def test_a_client_is_found_by_code_name_or_phone(service: Service) -> None:
    await order_ready(service, "ЗК-001001")  # C-1001 ООО Ромашка, +79161234567
    await order_ready(service, "ЗК-001002", client=OTHER_CLIENT, manager=OTHER_MANAGER)
    await sign_in_as_admin(service)
    assert await found(service, "C-100") == ["C-1001"]
    assert await found(service, "ромашка") == ["C-1001"]
    assert await found(service, "Лютиков") == ["C-2002"]
    assert await found(service, "8 (916) 765-43-21") == ["C-2002"]
    assert await found(service, "C-") == ["C-2002", "C-1001"]  # by name: ИП before ООО
    assert await found(service, "100%") == []  # a wildcard is a character like any other
    nobody = await service.client.get("/desk/clients", params={"q": "Васильков"}, headers=HTML)
    assert "Никого не нашлось" in visible(await nobody.text())


async def test_the_card_turns_a_type_off_and_keeps_an_own_text(service: Service) -> None:
    await order_ready(service, "ЗК-001003")
    csrf = await sign_in_as_admin(service)
    card = await service.client.get(CARD, headers=HTML)
    assert card.status == 200 and "ООО Ромашка" in await card.text()

    saved = await service.client.post(
        CARD + "/overrides",
        data={"client_order.ready.send": "off", "payment.registered.send": "on", "csrf": csrf},
        headers=HTML,
        allow_redirects=False,
    )
    assert (saved.status, saved.headers["Location"]) == (303, CARD + "?done=saved")
    _, api_card = await service.admin("GET", "/api/v1/clients/C-1001")
    assert api_card["overrides"]["client_order.ready"]["send"] is False
    assert api_card["overrides"]["payment.registered"]["send"] is True
    # «как у типа» clears the choice again.
    await service.client.post(CARD + "/overrides", data={"csrf": csrf}, headers=HTML)
    _, api_card = await service.admin("GET", "/api/v1/clients/C-1001")
    assert {o["send"] for o in api_card["overrides"].values()} == {None}

    typed = await service.client.post(
        OWN + "/preview",
        data={"source": "{{ client.name }}, заказ {{ document.number }} ждёт.", "csrf": csrf},
        headers=HTMX,
    )
    assert "ООО Ромашка, заказ ЗК-000123 ждёт." in visible(await typed.text())
    broken = await service.client.post(
        OWN + "/save", data={"source": "Привет\n{% for %}", "csrf": csrf}, headers=HTML
    )
    assert broken.status == 422 and "(строка 2)" in visible(await broken.text())
    kept = await service.client.post(
        OWN + "/save",
        data={"source": "{{ client.name }}, заказ {{ document.number }} ждёт.", "csrf": csrf},
        headers=HTML,
        allow_redirects=False,
    )
    assert kept.status == 303
    _, api_card = await service.admin("GET", "/api/v1/clients/C-1001")
    own = api_card["overrides"]["client_order.ready"]["template_client"]
    assert own == "{{ client.name }}, заказ {{ document.number }} ждёт."
    notification = await order_ready(service, "ЗК-001004")
    _, detail = await service.admin("GET", f"/api/v1/notifications/{notification}")
    assert detail["text"] == "ООО Ромашка, заказ ЗК-001004 ждёт."

    await service.client.post(OWN + "/save", data={"source": "", "csrf": csrf}, headers=HTML)
    _, api_card = await service.admin("GET", "/api/v1/clients/C-1001")
    assert api_card["overrides"]["client_order.ready"]["template_client"] is None


async def test_a_client_scans_the_cards_link_and_is_subscribed(
    live_service: Service, telegram: FakeTelegram
) -> None:
    await order_ready(live_service, "ЗК-001005")
    csrf = await sign_in_as_admin(live_service)
    forged = await live_service.client.post(CARD + "/telegram-link", data={}, headers=HTML)
    assert forged.status == 403

    issued = await live_service.client.post(
        CARD + "/telegram-link", data={"csrf": csrf}, headers=HTML
    )
    page = await issued.text()
    assert issued.status == 200
    match = re.search(
        r'class="deep-link" href="(https://t\.me/vestnik_test_bot\?start=([^"]+))"', page
    )
    assert match is not None, visible(page)
    url, token = html.unescape(match.group(1)), match.group(2)
    # The QR code on the page is the one of that very link.
    expected = segno.make(url, error="m").svg_inline(scale=4, title="QR-код ссылки в Telegram")
    assert expected in page

    [reply] = await say(telegram, telegram.command(CLIENT_CHAT, "/start", token))
    assert "вы подписаны" in (reply.text or "")
    card = await live_service.client.get(CARD, headers=HTML)
    assert "Telegram подключён" in visible(await card.text())


async def test_without_a_bot_the_card_says_so(service: Service) -> None:
    await order_ready(service, "ЗК-001006")
    csrf = await sign_in_as_admin(service)
    response = await service.client.post(
        CARD + "/telegram-link", data={"csrf": csrf}, headers=HTML
    )
    assert response.status == 409
    assert "Ссылку не создать: no Telegram bot is configured" in visible(await response.text())
    missing = await service.client.get("/desk/clients/C-404", headers=HTML)
    assert missing.status == 404 and "Такого клиента нет" in await missing.text()
