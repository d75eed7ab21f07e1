"""The packaged Telegram texts (HTML) and the markup check every saved Telegram text passes.

A subscribed client reads the richer Telegram text: the order's lines, the pickup point and
hours; the payment's amount and what is left to pay. Each packaged one renders on its
type's sample event into markup Telegram accepts, with the ERP's data escaped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dispatch.catalogue import EVENT_TYPES, sample_event
from dispatch.config import NotifySettings
from dispatch.render.library import RECIPIENTS, file_name
from dispatch.render.preview import body_context
from dispatch.render.renderer import Renderer
from dispatch.render.telegram_html import markup_problem

EVENTS = Path(__file__).resolve().parents[2] / "templates" / "events"
# The living order card is not a type's text: tests/unit/test_card_template.py covers it.
TELEGRAM_FILES = sorted(
    path.name for path in EVENTS.glob("*.html.j2") if not path.name.startswith("card.")
)
SHOP = NotifySettings(company_name="Автозапчасти на Ленина", company_phone="+7 495 123-45-67")


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def render(renderer: Renderer, code: str, event: dict[str, Any], name: str) -> str:
    assert event["type"] == code
    return renderer.render(f"events/{name}", body_context(event, SHOP))


def code_of(name: str) -> str:
    return next(code for code in EVENT_TYPES if name.startswith(code + "."))


def test_the_two_rich_telegram_texts_are_packaged() -> None:
    assert TELEGRAM_FILES == [
        "client_order.ready.client_telegram.html.j2",
        "payment.registered.client_telegram.html.j2",
    ]
    telegram = [r for r in RECIPIENTS if r.endswith("_telegram")]
    names = {file_name(code, r).split("/")[1] for code in EVENT_TYPES for r in telegram}
    assert set(TELEGRAM_FILES) <= names


@pytest.mark.parametrize("name", TELEGRAM_FILES)
def test_each_packaged_telegram_text_is_markup_telegram_accepts(
    renderer: Renderer, name: str
) -> None:
    code = code_of(name)
    event = sample_event(code)
    event["client"]["name"] = "ООО «Рога & Копыта» <опт>"
    event["document"]["number"] = "ЗК-<1>&2"
    text = render(renderer, code, event, name)
    assert markup_problem(text) is None, text
    assert "ЗК-&lt;1&gt;&amp;2" in text
    assert "<1>" not in text


def test_order_ready_shows_lines_pickup_point_and_hours(renderer: Renderer) -> None:
    event = sample_event("client_order.ready")
    text = render(renderer, "client_order.ready", event, TELEGRAM_FILES[0])
    assert text.splitlines()[0] == "✅ <b>Заказ №ЗК-000123 готов к выдаче</b>"
    assert "Сумма: <b>15 230,50 ₽</b>" in text
    assert "• Фильтр масляный Knecht × 2" in text
    assert "📍 Пункт выдачи: <b>ул. Ленина, 5</b>" in text
    assert "🕘 Часы работы: пн–пт 9:00–19:00, сб 10:00–16:00" in text
    assert "📞 +7 495 123-45-67" in text
    # Without the optional parts, no empty labels.
    event["document"]["extra"] = {}
    event["document"]["lines"] = []
    bare = render(renderer, "client_order.ready", event, TELEGRAM_FILES[0])
    assert "Пункт выдачи" not in bare and "Часы" not in bare and "Состав" not in bare


def test_a_long_order_lists_ten_lines_and_counts_the_rest(renderer: Renderer) -> None:
    event = sample_event("client_order.ready")
    event["document"]["lines"] = [{"name": f"Деталь {i}", "quantity": 1} for i in range(14)]
    text = render(renderer, "client_order.ready", event, TELEGRAM_FILES[0])
    assert text.count("• Деталь") == 10
    assert "…и ещё 4" in text


@pytest.mark.parametrize(
    ("balance", "line"),
    [
        (-4800.0, "Осталось оплатить: <b>4 800,00 ₽</b>"),
        ("1200.50", "На вашем счёте: <b>1 200,50 ₽</b>"),
        (0, "Задолженности нет."),
    ],
)
def test_payment_shows_the_amount_and_the_balance(
    renderer: Renderer, balance: object, line: str
) -> None:
    event = sample_event("payment.registered")
    event["document"]["extra"]["balance"] = balance
    text = render(renderer, "payment.registered", event, TELEGRAM_FILES[1])
    assert text.splitlines()[0] == "💳 <b>Оплата получена: 15 230,50 ₽</b>"
    assert "Заказ: №ЗК-000123" in text
    assert line in text


@pytest.mark.parametrize("balance", [None, "не число"])
def test_payment_without_a_usable_balance_says_nothing_about_it(
    renderer: Renderer, balance: object
) -> None:
    event = sample_event("payment.registered")
    event["document"]["extra"]["balance"] = balance
    text = render(renderer, "payment.registered", event, TELEGRAM_FILES[1])
    assert "оплатить" not in text and "счёте" not in text and "Задолженности" not in text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("<b>Заказ</b> <i>готов</i> <a href='https://x.ru'>ссылка</a>", None),
        ("<b>жирный <i>и курсив</i></b> &lt;3 &amp; &quot;", None),
        ("<div>Заказ</div>", "<div> is not a tag Telegram accepts"),
        ("строка\n<b>не закрыт", "<b> is never closed"),
        ("<b><i>перепутаны</b></i>", "</b> closes nothing"),
        ("строка<br/>", "<br/>"),
        ("&nbsp;пробел", "&nbsp;"),
    ],
)
def test_the_markup_check_knows_telegrams_rules(text: str, problem: str | None) -> None:
    found = markup_problem(text)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found, found
