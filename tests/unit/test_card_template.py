"""The living order card's packaged text: a client reads the order's state and one dated
line per step, refusals with their lines, in markup Telegram accepts with the ERP's data
escaped."""

from __future__ import annotations

from datetime import UTC, datetime

from dispatch.catalogue import sample_event
from dispatch.config import NotifySettings
from dispatch.delivery.cards import CARD_TEMPLATE, card_context
from dispatch.render.renderer import Renderer
from dispatch.render.telegram_html import markup_problem
from storage.cards.cards import DocumentStep

SHOP = NotifySettings(company_phone="+7 495 123-45-67")


def step(code: str, at: str, number: str = "ЗК-000123") -> DocumentStep:
    payload = sample_event(code)
    payload["occurred_at"] = at
    payload["document"]["kind"] = "client_order"
    payload["document"]["number"] = number
    return DocumentStep(code, None, datetime.now(UTC), payload)


def test_card_shows_the_state_and_each_step_with_refused_lines() -> None:
    steps = [
        step("client_order.created", "2026-11-25T09:05:00+03:00"),
        step("client_refusal.posted_by_order", "2026-11-26T12:00:00+03:00"),
        step("client_order.ready", "2026-11-27T16:20:00+03:00"),
    ]

    text = Renderer().render(CARD_TEMPLATE, card_context(steps, SHOP))

    assert markup_problem(text) is None, text
    lines = text.splitlines()
    assert lines[:2] == ["📦 <b>Заказ №ЗК-000123</b>", "Сейчас: <b>Готов к выдаче</b>"]
    assert "✔️ 25.11.2026 09:05 — Заказ оформлен" in lines
    refusal = lines.index("✔️ 26.11.2026 12:00 — Отказ по позициям")
    assert lines[refusal + 1].strip() == "• Фильтр масляный Knecht × 2"
    assert "▶️ 27.11.2026 16:20 — Готов к выдаче" in lines
    assert "📍 Пункт выдачи: <b>ул. Ленина, 5</b>" in lines
    assert lines[-1] == "📞 +7 495 123-45-67"


def test_card_escapes_the_erp_data() -> None:
    text = Renderer().render(
        CARD_TEMPLATE,
        card_context([step("client_order.created", "2026-11-25T09:05:00", "ЗК-<1>&2")], SHOP),
    )

    assert markup_problem(text) is None, text
    assert "ЗК-&lt;1&gt;&amp;2" in text and "<1>" not in text
