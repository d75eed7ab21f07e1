"""«Настройки уведомлений» in the desk: the seed's form saved through the same code as
`PUT /api/v1/settings`, the test SMS and the balance check, for admins only.

A running Vestnik on loopback (SQLite and PostgreSQL) with the fake `http` SMS gateway,
called with aiohttp's client as a browser would.
"""

from __future__ import annotations

import html
import re
from decimal import Decimal

from handlers.desk.config import DESK, DESK_LINKS
from tests.conftest import Service
from tests.fakes.sms_http import FakeHttpGateway
from tests.integration.desk_support import HTML, csrf_of, sign_in_as_admin
from tests.integration.test_bot_support import add_manager

FORM = {
    "mode": "test",
    "service": "telegram",
    "reserve": "sms",
    "sms_service": "main",
    "low_balance_threshold": "200",
    "admin_emails": "boss@parts.example\nops@parts.example",
    "chat_enabled": "on",
    "auto_reply": "Пишите нам в рабочее время.",
}


def visible(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


async def test_an_admin_saves_the_seed_form_and_the_api_sees_it(sms_service: Service) -> None:
    csrf = await sign_in_as_admin(sms_service)
    page = await sms_service.client.get("/desk/settings", headers=HTML)
    text = await page.text()
    assert page.status == 200
    assert "Уведомлять об окончании пакета с SMS" in text and "Не уведомлять" in text
    assert '<option value="main"' in text  # the live directory's services

    saved = await sms_service.client.post(
        "/desk/settings", data={**FORM, "csrf": csrf}, headers=HTML, allow_redirects=False
    )
    assert (saved.status, saved.headers["Location"]) == (303, "/desk/settings?done=saved")
    status, settings = await sms_service.admin("GET", "/api/v1/settings")
    assert status == 200
    assert settings["low_balance_threshold"] == 200
    assert settings["admin_emails"] == ["boss@parts.example", "ops@parts.example"]
    assert settings["chat_enabled"] is True and settings["sms_service"] == "main"
    assert settings["auto_reply"] == "Пишите нам в рабочее время."
    again = await (await sms_service.client.get("/desk/settings?done=saved", headers=HTML)).text()
    assert "Настройки сохранены" in again
    assert '<option value="200" selected>' in again

    # Unticking the chat box is a change too (an unposted checkbox is off).
    form = {key: value for key, value in FORM.items() if key != "chat_enabled"}
    await sms_service.client.post("/desk/settings", data={**form, "csrf": csrf}, headers=HTML)
    _, settings = await sms_service.admin("GET", "/api/v1/settings")
    assert settings["chat_enabled"] is False


async def test_the_domains_errors_are_shown_by_the_field_and_nothing_is_stored(
    sms_service: Service,
) -> None:
    csrf = await sign_in_as_admin(sms_service)
    _, before = await sms_service.admin("GET", "/api/v1/settings")
    bad = await sms_service.client.post(
        "/desk/settings",
        data={**FORM, "admin_emails": "boss-at-parts", "csrf": csrf},
        headers=HTML,
    )
    text = await bad.text()
    assert bad.status == 422
    assert 'id="err-admin_emails"' in text
    assert "not an e-mail address: 'boss-at-parts'" in visible(text)
    assert "boss-at-parts</textarea>" in text  # what was typed stays in the form
    unknown = await sms_service.client.post(
        "/desk/settings", data={**FORM, "sms_service": "nowhere", "csrf": csrf}, headers=HTML
    )
    assert unknown.status == 422
    assert "is not a service of the directory" in visible(await unknown.text())
    _, after = await sms_service.admin("GET", "/api/v1/settings")
    assert after == before


async def test_a_form_without_csrf_and_a_manager_are_refused(sms_service: Service) -> None:
    await sign_in_as_admin(sms_service)
    forged = await sms_service.client.post("/desk/settings", data=FORM, headers=HTML)
    assert forged.status == 403
    assert "Форма устарела" in await forged.text()
    _, settings = await sms_service.admin("GET", "/api/v1/settings")
    assert settings["low_balance_threshold"] == 100

    sms_service.client.session.cookie_jar.clear()
    await add_manager(sms_service)  # M-7, not an admin
    link = await sms_service.app[DESK_LINKS].issue(sms_service.db, "M-7")
    token = link.url.removeprefix(sms_service.app[DESK].link_base).rsplit("/", 1)[1]
    await sms_service.client.post("/desk/link", data={"token": token}, headers=HTML)
    journal = await (await sms_service.client.get("/desk/journal", headers=HTML)).text()
    assert "/desk/settings" not in journal  # not offered in the header either
    for response in (
        await sms_service.client.get("/desk/settings", headers=HTML),
        await sms_service.client.post(
            "/desk/settings", data={**FORM, "csrf": csrf_of(journal)}, headers=HTML
        ),
    ):
        assert response.status == 403
        assert "только для администратора" in await response.text()
    _, settings = await sms_service.admin("GET", "/api/v1/settings")
    assert settings["low_balance_threshold"] == 100


async def test_a_test_sms_and_a_balance_check_from_the_settings_page(
    sms_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    sms_gateway.price_per_part = Decimal("2.50")
    csrf = await sign_in_as_admin(sms_service)
    sent = await sms_service.client.post(
        "/desk/settings/test-sms", data={"phone": "+7 916 123-45-67", "csrf": csrf}, headers=HTML
    )
    text = visible(await sent.text())
    assert sent.status == 200, text
    assert "Тестовое SMS отправлено через «main»" in text and "SMS-сегментов: 1" in text
    [message] = sms_gateway.sent
    assert message.phone == "+79161234567"

    abroad = await sms_service.client.post(
        "/desk/settings/test-sms", data={"phone": "+14155550100", "csrf": csrf}, headers=HTML
    )
    assert abroad.status == 422
    assert "На номера этой страны тестовые SMS не отправляются" in await abroad.text()
    nonsense = await sms_service.client.post(
        "/desk/settings/test-sms", data={"phone": "позвоните", "csrf": csrf}, headers=HTML
    )
    assert nonsense.status == 422 and "SMS не отправлено" in await nonsense.text()
    assert len(sms_gateway.sent) == 1

    checked = await sms_service.client.post(
        "/desk/settings/balance", data={"csrf": csrf}, headers=HTML
    )
    text = visible(await checked.text())
    assert checked.status == 200, text
    # 1000 less the test SMS; its recorded price tells how many more the rest pays for.
    assert re.search(r"Баланс\s+997\.50?\s+RUB", text), text
    assert re.search(r"Осталось SMS\s+399\s", text), text
    assert "средняя по последним отправкам" in text and "в норме" in text
