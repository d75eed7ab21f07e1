"""The web desk in a real browser (headless Chromium), on SQLite and PostgreSQL.

Vestnik runs in live mode on a loopback port with the fake Telegram Bot API and the fake
SMS gateway; orders ready for pickup wait for a person to confirm them. An admin signs in
with the token, reads the journal with its document numbers, watches a new order arrive
without reloading, confirms one and sees it sent; a form posted without its CSRF token is
refused. A manager gets a one-time link from the bot's `/desk`, signs in on a phone-sized
screen, sees only their own clients, confirms one of them, and the link does not work
twice.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import TIMEOUT_MS, screenshot
from tests.conftest import ADMIN_TOKEN, Service, live_settings, start_service
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram
from tests.integration.desk_support import (
    CONFIRM_FIRST,
    OTHER_CLIENT,
    OTHER_MANAGER,
    order_ready,
    status_of,
)
from tests.integration.test_bot_support import MANAGER_CHAT, STRANGER_CHAT, add_manager, say

LINK = re.compile(r"https?://\S+?(/desk/link/[A-Za-z0-9_-]+)")


@pytest.fixture
async def shop(
    database_url: str, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> AsyncIterator[Service]:
    running = await start_service(
        live_settings(database_url, telegram, sms_gateway, **CONFIRM_FIRST)
    )
    try:
        yield running
    finally:
        await running.client.close()


def base_url(service: Service) -> str:
    return str(service.client.make_url("")).rstrip("/")


async def new_page(browser: Any, **context: Any) -> Any:
    page = await (await browser.new_context(locale="ru-RU", **context)).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page


async def test_an_admin_confirms_an_order_from_the_journal(
    shop: Service, browser: Any, backend: str, sms_gateway: FakeHttpGateway
) -> None:
    first = await order_ready(shop, "ЗК-000901")
    second = await order_ready(shop, "ЗК-000902")
    page = await new_page(browser)

    await page.goto(base_url(shop) + "/desk/")
    await expect(page.get_by_role("heading", name="Вход в рабочее место")).to_be_visible()
    await page.get_by_label("Токен администратора").fill("not-the-admin-token")
    await page.get_by_role("button", name="Войти").click()
    await expect(page.get_by_role("alert")).to_have_text("Неверный токен администратора.")
    await screenshot(page, f"{backend}-signin-refused")
    await page.get_by_label("Токен администратора").fill(ADMIN_TOKEN)
    await page.get_by_role("button", name="Войти").click()

    await expect(page).to_have_url(re.compile(r"/desk/journal$"))
    rows = page.locator("#journal tbody tr")
    await expect(rows.filter(has_text="Заказ ЗК-000901")).to_contain_text("ждёт подтверждения")
    await expect(rows.filter(has_text="Заказ ЗК-000902")).to_contain_text("ООО Ромашка")
    # The page follows the journal: a new order shows up without reloading.
    await expect(page.locator("#live-state")).to_have_text("обновляется на лету")
    await order_ready(shop, "ЗК-000903")
    await expect(rows.first).to_contain_text("Заказ ЗК-000903")
    await screenshot(page, f"{backend}-journal")

    await page.get_by_role("link", name=f"№{first}", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text(f"Уведомление №{first}")
    await expect(page.locator("dl.facts")).to_contain_text("Заказ ЗК-000901")
    await expect(page.locator("main")).to_contain_text("SMS-сегментов: 1")
    await screenshot(page, f"{backend}-card")
    await page.get_by_label("Примечание (необязательно)").first.fill(
        "клиент подтвердил по телефону"
    )
    await page.get_by_role("button", name="Подтвердить отправку").click()
    await expect(page.get_by_role("status")).to_have_text("Отправка подтверждена.")
    await shop.wait_for_status(first, "sent")
    assert [sms.text for sms in sms_gateway.sent if "ЗК-000901" in sms.text]

    await page.get_by_role("link", name="← Журнал").click()
    await expect(rows.filter(has_text="Заказ ЗК-000901")).to_contain_text("отправлено")
    await screenshot(page, f"{backend}-journal-after-confirm")

    # A filter redraws the table in place (htmx), and the address says which filter.
    await page.evaluate("window.stillTheSamePage = true")
    await page.get_by_label("Статус").select_option("awaiting_confirmation")
    await expect(page).to_have_url(re.compile(r"status=awaiting_confirmation"))
    await expect(rows).to_have_count(2)
    await expect(page.locator("#journal")).not_to_contain_text("ЗК-000901")
    assert await page.evaluate("window.stillTheSamePage === true")
    await expect(page.locator("#live-state")).to_have_text("обновляется на лету")

    # The same session's cookie, but not its form: refused, and nothing moves.
    refused = await page.request.post(
        base_url(shop) + f"/desk/notifications/{second}/confirm",
        form={"note": "без токена формы"},
        headers={"Accept": "text/html"},
    )
    assert refused.status == 403
    assert "Форма устарела" in await refused.text()
    assert await status_of(shop, second) == "awaiting_confirmation"
    assert len(await shop.history(second)) == 1


async def test_a_manager_signs_in_from_the_bot_and_sees_only_their_clients(
    shop: Service, browser: Any, backend: str, telegram: FakeTelegram
) -> None:
    await add_manager(shop, chat_id=MANAGER_CHAT)  # M-7, Иван Петров
    mine = await order_ready(shop, "ЗК-000951")
    await order_ready(shop, "ЗК-000952", client=OTHER_CLIENT, manager=OTHER_MANAGER)

    # Only linked managers get a link.
    [refused] = await say(telegram, telegram.command(STRANGER_CHAT, "/desk"))
    assert "только менеджерам" in (refused.text or "")
    assert not LINK.search(refused.text or "")

    replies = await say(telegram, telegram.command(MANAGER_CHAT, "/desk"))
    text = replies[-1].text or ""
    assert "действует 10 мин." in text
    match = LINK.search(text)
    assert match is not None, text
    link = base_url(shop) + match.group(1)

    # A phone's screen: managers often read the journal on one.
    phone = {"viewport": {"width": 390, "height": 844}, "is_mobile": True}
    page = await new_page(browser, **phone)
    await page.goto(link)
    await screenshot(page, f"{backend}-manager-link")
    await page.get_by_role("button", name="Войти как Иван Петров").click()
    await expect(page).to_have_url(re.compile(r"/desk/journal$"))
    rows = page.locator("#journal tbody tr")
    await expect(rows.filter(has_text="ЗК-000951")).to_have_count(1)
    await expect(page.locator("#journal")).not_to_contain_text("ЗК-000952")
    await expect(page.locator("header")).to_contain_text("только ваши клиенты")
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await screenshot(page, f"{backend}-manager-journal")

    await page.get_by_role("link", name=f"№{mine}", exact=True).click()
    await page.get_by_role("button", name="Подтвердить отправку").click()
    await expect(page.get_by_role("status")).to_have_text("Отправка подтверждена.")
    _, detail = await shop.admin("GET", f"/api/v1/notifications/{mine}")
    assert detail["history"][1]["actor"] == "manager:M-7"

    # Another browser (or someone the link was forwarded to): it is spent.
    again = await new_page(browser, **phone)
    response = await again.goto(link)
    assert response is not None and response.status == 410
    await expect(again.get_by_role("alert")).to_contain_text("уже использована")
    await screenshot(again, f"{backend}-manager-link-spent")
