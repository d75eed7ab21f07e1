"""The packaged default texts cost one SMS segment (CONTRACT §7, last bullet).

Scenario: a shop installs Vestnik and changes no template. Every one of the 16 event types,
posted as its sample event, reaches the client as a single Cyrillic SMS segment (at most 70
UCS-2 units, counted by the project's own segmentation) that still names the document.
The same holds for a shop that set its name and phone, and for an ERP whose values are
longer than the sample's (long numbers, amounts in millions, long addresses and reasons):
the optional parts of a text give way before a second segment is paid for.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from dispatch.catalogue import EVENT_TYPES, sample_event
from dispatch.config import NotifySettings
from dispatch.intake.context import event_context
from dispatch.render.renderer import Renderer
from dispatch.render.segments import UCS2_SINGLE, segment_text

CODES = tuple(EVENT_TYPES)

PLAIN_SHOP = NotifySettings()
SHOP_WITH_PHONE = NotifySettings(company_name="Автодеталь-Юг", company_phone="+7 (495) 123-45-67")

# Values a real ERP sends that are longer than the sample's.
LONG_EXTRA: dict[str, Any] = {
    "car": "Toyota Land Cruiser Prado А123ВС777",
    "pickup_point": "г. Москва, Варшавское шоссе, д. 170Г, стр. 3, ПВЗ «Южный»",
    "reason": "превышен кредитный лимит по договору поставки №15 от 01.02.2025",
    "old_category": "Розница (физические лица)",
    "new_category": "Крупный опт (дилерская сеть)",
    "to_warehouse": "Подольск-Северный, ангар 4",
    "state": "Ожидание запчастей от поставщика",
    "old_state": "В работе",
    "decision": "partial",
}


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def render(
    renderer: Renderer, code: str, event: dict[str, Any], shop: NotifySettings, recipient: str
) -> str:
    """What ingestion would store for `recipient`: the type's packaged default, rendered."""
    context = event_context(
        event_id=event["event_id"],
        event_type=code,
        occurred_at=datetime.fromisoformat(event["occurred_at"]),
        client=event["client"],
        manager=event["manager"],
        document=event["document"],
        notify=shop,
    )
    return renderer.render(getattr(EVENT_TYPES[code], f"template_{recipient}"), context)


def lengthened(code: str) -> dict[str, Any]:
    """The sample event of `code` with every value a text may carry made realistically long."""
    event = sample_event(code)
    document = event["document"]
    document["number"] = document["number"].replace("-", "-0000")
    document["amount"] = 1234567.89
    extra = document["extra"]
    if "order_number" in extra:
        extra["order_number"] = extra["order_number"].replace("-", "-0000")
    for key, value in LONG_EXTRA.items():
        if key in extra:
            extra[key] = value
    event["client"]["name"] = "ООО «Автосервис Константинопольский и партнёры»"
    return event


def assert_one_segment(text: str, number: str) -> None:
    figures = segment_text(text)
    assert figures.encoding == "ucs2", text
    assert figures.segments == 1, (figures.units, text)
    assert figures.units <= UCS2_SINGLE
    assert number in text, text


@pytest.mark.parametrize("code", CODES)
def test_the_client_sms_of_the_sample_event_is_one_segment(renderer: Renderer, code: str) -> None:
    event = sample_event(code)
    text = render(renderer, code, event, PLAIN_SHOP, "client")
    assert_one_segment(text, event["document"]["number"])


@pytest.mark.parametrize("code", CODES)
def test_a_shop_phone_never_costs_a_second_segment(renderer: Renderer, code: str) -> None:
    event = sample_event(code)
    text = render(renderer, code, event, SHOP_WITH_PHONE, "client")
    assert_one_segment(text, event["document"]["number"])


@pytest.mark.parametrize("code", CODES)
def test_long_erp_values_still_fit_one_segment(renderer: Renderer, code: str) -> None:
    event = lengthened(code)
    text = render(renderer, code, event, SHOP_WITH_PHONE, "client")
    assert_one_segment(text, event["document"]["number"])


def test_optional_parts_appear_when_they_fit(renderer: Renderer) -> None:
    """Giving way is not dropping: with short values the useful extras are in the text."""
    ready = sample_event("client_order.ready")
    assert render(renderer, "client_order.ready", ready, SHOP_WITH_PHONE, "client") == (
        "Заказ №ЗК-000123 готов к выдаче. Пункт выдачи: ул. Ленина, 5."
    )
    payment = sample_event("payment.registered")
    assert render(renderer, "payment.registered", payment, PLAIN_SHOP, "client") == (
        "Спасибо за оплату 15 230,50 ₽ по заказу №ЗК-000123 (№ПКО-000456)."
    )
    blocked = sample_event("counterparty.block_changed")
    assert render(renderer, "counterparty.block_changed", blocked, PLAIN_SHOP, "client") == (
        "Учётная запись №КА-000512 заблокирована: превышен кредитный лимит."
    )
    # A reason too long for the segment is left out, and the shop's phone takes its place.
    blocked["document"]["extra"]["reason"] = LONG_EXTRA["reason"]
    assert render(renderer, "counterparty.block_changed", blocked, SHOP_WITH_PHONE, "client") == (
        "Учётная запись №КА-000512 заблокирована. Тел. +7 (495) 123-45-67"
    )


@pytest.mark.parametrize("code", CODES)
def test_the_manager_text_of_the_sample_event_is_at_most_two_segments(
    renderer: Renderer, code: str
) -> None:
    """Managers get SMS too when they are not in the bot: the document, what happened and
    the client's name and phone, without the document's date, in two segments at most."""
    event = sample_event(code)
    text = render(renderer, code, event, PLAIN_SHOP, "manager")
    assert segment_text(text).segments <= 2, text
    assert event["document"]["number"] in text and "ООО Ромашка, +79161234567" in text
