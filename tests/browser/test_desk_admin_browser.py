"""The desk's admin pages in a real browser (headless Chromium), on SQLite and PostgreSQL.

Vestnik runs in live mode on a loopback port with the fake Telegram Bot API and the fake
SMS gateway. An admin changes the seed's settings form and the admin API answers the new
values; edits an order's SMS text and watches the preview's segment count change as they
type (htmx, no button pressed), saves it, and the next order's journal card carries the
new wording; walks the clients, SMS services and balance pages, one of them on a phone's
width. Each page is saved as a screenshot.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

from playwright.async_api import expect

from storage.ops import alerts
from storage.types import utcnow
from tests.browser.conftest import TIMEOUT_MS, screenshot
from tests.browser.test_desk_browser import base_url
from tests.conftest import ADMIN_TOKEN, Service
from tests.integration.desk_support import order_ready

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


async def signed_in_page(browser: Any, service: Service, **context: Any) -> Any:
    page = await (await browser.new_context(locale="ru-RU", **context)).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(base_url(service) + "/desk/signin")
    await page.get_by_label("Токен администратора").fill(ADMIN_TOKEN)
    await page.get_by_role("button", name="Войти").click()
    await expect(page).to_have_url(re.compile(r"/desk/journal$"))
    return page


async def test_an_admin_changes_the_settings_and_the_api_reflects_them(
    live_service: Service, browser: Any, backend: str
) -> None:
    page = await signed_in_page(browser, live_service)
    await page.get_by_role("link", name="Настройки", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Настройки уведомлений")
    await page.get_by_label("Уведомлять об окончании пакета с SMS").select_option(
        label="Осталось 50 SMS"
    )
    await page.get_by_label("Использовать чат с клиентом").check()
    await page.get_by_label("E-mail администраторов (по одному в строке)").fill(
        "boss@parts.example"
    )
    await page.get_by_role("button", name="Сохранить").click()
    await expect(page.get_by_role("status")).to_have_text("Настройки сохранены.")
    await screenshot(page, f"{backend}-settings")
    status, settings = await live_service.admin("GET", "/api/v1/settings")
    assert status == 200
    assert settings["low_balance_threshold"] == 50 and settings["chat_enabled"] is True
    assert settings["admin_emails"] == ["boss@parts.example"]

    # A mistake is shown next to its field, and the API keeps the saved values.
    await page.get_by_label("E-mail администраторов (по одному в строке)").fill("boss-at-parts")
    await page.get_by_role("button", name="Сохранить").click()
    await expect(page.locator("#err-admin_emails")).to_contain_text("not an e-mail address")
    _, settings = await live_service.admin("GET", "/api/v1/settings")
    assert settings["admin_emails"] == ["boss@parts.example"]

    await page.get_by_role("button", name="Проверить баланс").click()
    await expect(page.locator("dl.balance")).to_contain_text("Осталось SMS")
    await screenshot(page, f"{backend}-settings-balance")


async def test_the_preview_counts_segments_as_the_admin_types(
    live_service: Service, browser: Any, backend: str
) -> None:
    page = await signed_in_page(browser, live_service)
    await page.get_by_role("link", name="Типы событий").click()
    await expect(page.locator("table.flags tbody tr")).to_have_count(16)
    await screenshot(page, f"{backend}-event-types")
    await page.locator("#t-client_order\\.ready").get_by_role("link", name="SMS клиенту").click()
    segments = page.locator("#preview .segments")
    await expect(segments).to_have_text("1")

    editor = page.get_by_label("Шаблон (Jinja2)")
    await editor.fill("")
    await editor.press_sequentially("Заказ {{ document.number }} ждёт вас.")
    await expect(page.locator("#preview pre")).to_have_text("Заказ ЗК-000123 ждёт вас.")
    await expect(segments).to_have_text("1")
    await editor.press_sequentially(
        " Забрать можно в пункте выдачи на Складской, 5, с 9 до 21 без выходных."
    )
    await expect(segments).to_have_text("2")
    await screenshot(page, f"{backend}-template-editor")
    await editor.press_sequentially(" {{ document.numbr }}")
    await expect(page.locator("#preview")).to_contain_text("Ошибка в строке 1")
    for _ in range(len(" {{ document.numbr }}")):
        await editor.press("Backspace")
    await expect(segments).to_have_text("2")

    await page.get_by_role("button", name="Сохранить").click()
    await expect(page.get_by_role("status")).to_contain_text("Сохранена версия 1")
    notification = await order_ready(live_service, "ЗК-000777")
    await page.goto(base_url(live_service) + f"/desk/notifications/{notification}")
    await expect(page.locator("pre.text").first).to_contain_text(
        "Заказ ЗК-000777 ждёт вас. Забрать можно в пункте выдачи"
    )
    await expect(page.locator("main")).to_contain_text("SMS-сегментов: 2")


async def test_clients_sms_services_and_balance_pages(
    live_service: Service, browser: Any, backend: str
) -> None:
    await order_ready(live_service, "ЗК-000778")
    page = await signed_in_page(browser, live_service, **PHONE)
    await page.goto(base_url(live_service) + "/desk/clients")
    await page.get_by_label("Код, название или телефон").fill("ромашка")
    await page.get_by_role("button", name="Найти").click()
    await page.get_by_role("link", name="ООО Ромашка").click()
    await page.get_by_role("button", name="Создать ссылку и QR-код").click()
    await expect(page.locator(".deep-link")).to_contain_text(
        "https://t.me/vestnik_test_bot?start="
    )
    await expect(page.locator(".qr svg")).to_be_visible()
    # Readable on a phone: nothing is wider than the screen.
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await screenshot(page, f"{backend}-client-card-phone")

    await page.goto(base_url(live_service) + "/desk/sms-services")
    await page.get_by_role("button", name="Проверить").click()
    await expect(page.get_by_role("status")).to_contain_text("«main» отвечает")
    await screenshot(page, f"{backend}-sms-services-phone")
    now = utcnow()
    async with live_service.db.transaction() as session:
        for hours_ago, amount in ((30, "1000"), (20, "640"), (10, "420"), (1, "980")):
            await alerts.record_check(
                session,
                provider="main",
                checked_at=now - timedelta(hours=hours_ago),
                balance=Decimal(amount),
                currency="RUB",
                error=None,
            )
    await page.goto(base_url(live_service) + "/desk/balance")
    await expect(page.locator("#b-main")).to_contain_text("Осталось SMS")
    await expect(page.locator("#b-main polyline.balance-line")).to_be_visible()
    await screenshot(page, f"{backend}-balance-phone")
