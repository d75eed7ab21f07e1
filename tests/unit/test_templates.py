"""The event catalogue, the 32 default templates and the sandboxed renderer.

Scenarios: the ERP posts an event of each type with full and with minimal data, and the
client and the manager get a short, tidy Russian text; a per-client template from the
database renders the same way; anything a template does wrong or hostile becomes a
RenderError with a readable reason, never another exception and never rendered output.
"""

from __future__ import annotations

import re
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch.catalogue import EVENT_TYPES, EventType, EventTypeDefaults, get_event_type
from dispatch.render import limits
from dispatch.render.filters import date_ru, money, plural_ru
from dispatch.render.limits import MAX_OUTPUT_CHARS
from dispatch.render.renderer import Renderer, RenderError, build_context
from tests.events import ALL_TYPES

# The codes of CONTRACT.md §3, in its order (one list for all tests).
CONTRACT_CODES = ALL_TYPES

# Two UCS-2 SMS segments (the seed's table: Cyrillic 70 / 134).
TWO_SEGMENTS = 134

LINES = [
    {
        "article": "W914/2",
        "brand": "MANN",
        "name": "Фильтр масляный",
        "quantity": 2,
        "price": 640.0,
    },
    {
        "article": "BKR6E",
        "brand": "NGK",
        "name": "Свеча зажигания",
        "quantity": 4,
        "price": "390.00",
    },
    {
        "article": "0 986 452 041",
        "brand": "Bosch",
        "name": "Фильтр масляный",
        "quantity": 1,
        "price": 710,
    },
    {"name": "Колодки тормозные передние, комплект", "quantity": 1, "price": 2900},
]

DOCUMENTS: dict[str, dict[str, Any]] = {
    "vin_request.posted": {
        "kind": "vin_request",
        "number": "VR-000045",
        "lines": [],
        "extra": {"car": "Kia Rio 2017", "vin": "Z94CB41AAHR123456"},
    },
    "client_order.created": {"kind": "client_order", "number": "ЗК-000123", "lines": LINES},
    "client_order.posted": {"kind": "client_order", "number": "ЗК-000123", "lines": LINES},
    "client_refusal.posted_by_order": {
        "kind": "client_refusal",
        "number": "ОК-000017",
        "amount": 3450,
        "lines": LINES[:2],
        "extra": {"order_number": "ЗК-000123"},
    },
    "client_refusal.posted": {
        "kind": "client_refusal",
        "number": "ОК-000018",
        "amount": "3450.00",
        "lines": LINES,
    },
    "supplier_refusal.posted_by_order": {
        "kind": "supplier_refusal",
        "number": "ОП-000009",
        "amount": 1350,
        "lines": LINES,
        "extra": {"order_number": "ЗК-000123", "supplier": "Армтек"},
    },
    "receipt_invoice.posted": {
        "kind": "receipt_invoice",
        "number": "ПН-000311",
        "lines": LINES,
        "extra": {"order_number": "ЗК-000123", "supplier": "Армтек"},
    },
    "payment.registered": {
        "kind": "cash_receipt",
        "number": "ПКО-000456",
        "amount": 15230.5,
        "extra": {"order_number": "ЗК-000123"},
    },
    "work_order.completed": {
        "kind": "work_order",
        "number": "ЗН-000078",
        "amount": Decimal("12500"),
        "extra": {"car": "Kia Rio А123ВС777", "vin": "Z94CB41AAHR123456"},
    },
    "client_order.ready": {
        "kind": "client_order",
        "number": "ЗК-000123",
        "lines": LINES,
        "extra": {"pickup_point": "ул. Ленина, 5"},
    },
    "counterparty.category_changed": {
        "kind": "counterparty",
        "number": "КА-000512",
        "extra": {"old_category": "Розница", "new_category": "Опт"},
    },
    "counterparty.block_changed": {
        "kind": "counterparty",
        "number": "КА-000512",
        "extra": {"blocked": True, "reason": "превышен кредитный лимит"},
    },
    "transfer.posted_by_order": {
        "kind": "transfer",
        "number": "ПМ-000034",
        "lines": LINES[:1],
        "extra": {
            "order_number": "ЗК-000123",
            "from_warehouse": "Центральный",
            "to_warehouse": "Южный",
        },
    },
    "repair_task.created": {
        "kind": "repair_task",
        "number": "РЗ-000051",
        "extra": {"car": "Kia Rio", "vin": "Z94CB41AAHR123456", "bay": "2", "state": "В работе"},
    },
    "repair_task.changed": {
        "kind": "repair_task",
        "number": "РЗ-000051",
        "extra": {
            "car": "Kia Rio",
            "vin": "Z94CB41AAHR123456",
            "bay": 2,
            "state": "Ожидание запчастей",
            "old_state": "В работе",
        },
    },
    "client_return.decided": {
        "kind": "client_return",
        "number": "ВК-000021",
        "amount": 2340,
        "extra": {"decision": "approved", "reason": "брак производителя"},
    },
}

CLIENT = {
    "id": "C-1001",
    "name": "ООО Ромашка",
    "phone": "+79161234567",
    "manager_id": "M-7",
    "category": "Опт",
    "blocked": False,
}
MANAGER = {"id": "M-7", "name": "Иван Петров", "phone": "+79031234567"}
COMPANY = {"name": "Автодеталь", "phone": "+74950000000"}


def event_of(code: str) -> dict[str, Any]:
    return {
        "event_id": "erp-7f3a-000123",
        "type": code,
        "occurred_at": "2026-11-27T10:15:00+03:00",
    }


def full_context(code: str, **document: Any) -> dict[str, Any]:
    """The event as a well-configured ERP posts it."""
    doc = {
        "date": "2026-11-27",
        "amount": 15230.5,
        "currency": "RUB",
        "extra": {},
        **DOCUMENTS[code],
        **document,
    }
    return build_context(
        event=event_of(code), client=CLIENT, manager=MANAGER, document=doc, company=COMPANY
    )


def minimal_context(code: str) -> dict[str, Any]:
    """The least an event can carry: client id and name, a document number."""
    return build_context(
        event=event_of(code),
        client={"id": "C-1", "name": "Пётр"},
        manager=None,
        document={"number": "Д-1"},
        company=None,
    )


def assert_tidy(text: str) -> None:
    """Non-empty Russian text without template debris or sloppy whitespace."""
    assert text
    assert re.search("[а-яА-ЯёЁ]", text), text
    assert "None" not in text
    for debris in ("{{", "}}", "{%", "%}", "{#", "#}", "Undefined"):
        assert debris not in text, text
    assert "  " not in text, text
    assert "\n\n" not in text, text
    assert text == text.strip()
    assert all(line == line.rstrip() for line in text.splitlines()), text
    assert " ." not in text and " ," not in text and ".." not in text, text


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


# --- catalogue ----------------------------------------------------------------------


def test_catalogue_has_exactly_the_contract_codes_in_order() -> None:
    assert tuple(EVENT_TYPES) == CONTRACT_CODES


def test_catalogue_is_read_only() -> None:
    with pytest.raises(TypeError):
        EVENT_TYPES["x.y"] = EVENT_TYPES["client_order.ready"]  # type: ignore[index]


def test_every_type_carries_the_contract_defaults() -> None:
    for event_type in EVENT_TYPES.values():
        assert event_type.defaults == EventTypeDefaults(
            confirm_before_send=False,
            send_to_client=True,
            send_to_manager=False,
            tracked_by_manager=False,
            default_for_new_clients=True,
        )
        assert event_type.title and re.search("[а-яА-Я]", event_type.title)
        assert event_type.description and re.search("[а-яА-Я]", event_type.description)


def test_get_event_type() -> None:
    ready = get_event_type("client_order.ready")
    assert isinstance(ready, EventType)
    assert ready.title == "Заказ клиента готов к выдаче"
    assert ready.template_client == "events/client_order.ready.client.txt.j2"
    assert ready.template_manager == "events/client_order.ready.manager.txt.j2"
    assert get_event_type("no.such") is None


def test_every_type_has_both_template_files(renderer: Renderer) -> None:
    for event_type in EVENT_TYPES.values():
        assert (renderer.template_dir / event_type.template_client).is_file()
        assert (renderer.template_dir / event_type.template_manager).is_file()
    files = sorted(p.name for p in (renderer.template_dir / "events").glob("*.txt.j2"))
    assert len(files) == 2 * len(CONTRACT_CODES)


# --- the 32 templates ---------------------------------------------------------------


@pytest.mark.parametrize("code", CONTRACT_CODES)
def test_client_text_with_full_event(renderer: Renderer, code: str) -> None:
    text = renderer.render(EVENT_TYPES[code].template_client, full_context(code))
    assert_tidy(text)
    assert DOCUMENTS[code]["number"] in text
    assert len(text) <= TWO_SEGMENTS, (len(text), text)
    assert "\n" not in text


@pytest.mark.parametrize("code", CONTRACT_CODES)
def test_manager_text_with_full_event(renderer: Renderer, code: str) -> None:
    text = renderer.render(EVENT_TYPES[code].template_manager, full_context(code))
    assert_tidy(text)
    assert DOCUMENTS[code]["number"] in text
    assert "ООО Ромашка" in text and "+79161234567" in text
    assert len(text) <= 4 * 67  # four UCS-2 segments at most


@pytest.mark.parametrize("recipient", ["client", "manager"])
@pytest.mark.parametrize("code", CONTRACT_CODES)
def test_text_with_minimal_event(renderer: Renderer, code: str, recipient: str) -> None:
    template = getattr(EVENT_TYPES[code], f"template_{recipient}")
    text = renderer.render(template, minimal_context(code))
    assert_tidy(text)
    assert "Д-1" in text
    if recipient == "manager":
        assert "Пётр" in text


@pytest.mark.parametrize("recipient", ["client", "manager"])
@pytest.mark.parametrize("code", CONTRACT_CODES)
def test_text_with_nulls_everywhere(renderer: Renderer, code: str, recipient: str) -> None:
    """JSON nulls in every optional field print as nothing, never as "None"."""
    document = {
        "kind": None,
        "number": "Д-2",
        "date": None,
        "amount": None,
        "currency": None,
        "lines": None,
        "extra": None,
    }
    client = {
        "id": "C-2",
        "name": "Анна",
        "phone": None,
        "manager_id": None,
        "category": None,
        "blocked": None,
    }
    context = build_context(
        event=event_of(code),
        client=client,
        manager=None,
        document=document,
        company={"name": None, "phone": None},
    )
    text = renderer.render(getattr(EVENT_TYPES[code], f"template_{recipient}"), context)
    assert_tidy(text)
    assert "Д-2" in text


def test_refused_lines_are_listed_briefly(renderer: Renderer) -> None:
    code = "client_refusal.posted"
    # The client's SMS counts the lines (one segment); the manager's text lists them.
    client = renderer.render(EVENT_TYPES[code].template_client, full_context(code))
    assert client == "Отказ №ОК-000018 оформлен: 4 позиции на 3 450,00 ₽."
    manager = renderer.render(EVENT_TYPES[code].template_manager, full_context(code))
    assert "MANN W914/2, NGK BKR6E, Bosch 0 986 452 041 и ещё 1" in manager
    three = renderer.render(
        EVENT_TYPES[code].template_manager, full_context(code, lines=LINES[:3])
    )
    assert "и ещё" not in three
    names = renderer.render(
        EVENT_TYPES[code].template_manager,
        full_context(
            code, lines=[{"name": "Колодки тормозные передние, комплект Brembo"}, "Фильтр салона"]
        ),
    )
    assert "Колодки тормозные передние,…" in names and "Фильтр салона" in names


def test_ready_order_for_the_client(renderer: Renderer) -> None:
    text = renderer.render(
        EVENT_TYPES["client_order.ready"].template_client, full_context("client_order.ready")
    )
    # One SMS segment: the pickup point fits, the amount and the shop's phone do not.
    assert text == "Заказ №ЗК-000123 готов к выдаче. Пункт выдачи: ул. Ленина, 5."
    no_point = renderer.render(
        EVENT_TYPES["client_order.ready"].template_client,
        full_context("client_order.ready", extra={}),
    )
    assert no_point == "Заказ №ЗК-000123 готов к выдаче. Сумма 15 230,50 ₽. Тел. +74950000000"


def test_ready_order_for_the_manager(renderer: Renderer) -> None:
    text = renderer.render(
        EVENT_TYPES["client_order.ready"].template_manager, full_context("client_order.ready")
    )
    assert text == (
        "Заказ №ЗК-000123 готов к выдаче, всё в резерве, 4 позиции "
        "на 15 230,50 ₽. Клиент: ООО Ромашка, +79161234567."
    )


def test_amount_as_string_in_dollars(renderer: Renderer) -> None:
    text = renderer.render(
        EVENT_TYPES["payment.registered"].template_client,
        full_context(
            "payment.registered",
            amount="1234567.891",
            currency="usd",
            date="2026-11-27T10:15:00+03:00",
        ),
    )
    assert text == "Спасибо за оплату 1 234 567,89 $ по заказу №ЗК-000123 (№ПКО-000456)."


@pytest.mark.parametrize(
    ("extra", "client", "expected"),
    [
        ({"blocked": True}, {}, "заблокирована"),
        ({"blocked": False}, {}, "Блокировка учётной записи №КА-1 снята"),
        ({}, {"blocked": True}, "заблокирована"),
        ({}, {"blocked": False}, "снята"),
        ({}, {"blocked": None}, "Изменён статус блокировки"),
    ],
)
def test_block_status(
    renderer: Renderer, extra: dict[str, Any], client: dict[str, Any], expected: str
) -> None:
    context = build_context(
        event=event_of("counterparty.block_changed"),
        client={**CLIENT, **client},
        manager=MANAGER,
        document={"number": "КА-1", "extra": extra},
        company=COMPANY,
    )
    text = renderer.render(EVENT_TYPES["counterparty.block_changed"].template_client, context)
    assert expected in text
    assert_tidy(text)


def test_category_from_the_client_card(renderer: Renderer) -> None:
    context = build_context(
        event=event_of("counterparty.category_changed"),
        client={**CLIENT, "category": "VIP"},
        manager=None,
        document={"number": "КА-1"},
        company=None,
    )
    text = renderer.render(EVENT_TYPES["counterparty.category_changed"].template_client, context)
    assert text == "Ваша категория клиента изменена на «VIP» (№КА-1)."


@pytest.mark.parametrize(
    ("decision", "expected", "refund_shown"),
    [
        ("approved", "Ваш возврат №ВК-000021 одобрен.", True),
        ("PARTIAL", "Ваш возврат №ВК-000021 одобрен частично.", True),
        ("rejected", "Ваш возврат №ВК-000021 отклонён.", False),
        (False, "Ваш возврат №ВК-000021 отклонён.", False),
        # A long free-text decision leaves no room for the amount in one SMS segment.
        ("Передан на экспертизу", "принято решение: Передан на экспертизу.", False),
    ],
)
def test_return_decision(
    renderer: Renderer, decision: Any, expected: str, refund_shown: bool
) -> None:
    code = "client_return.decided"
    context = full_context(code, extra={"decision": decision})
    text = renderer.render(EVENT_TYPES[code].template_client, context)
    assert expected in text
    assert ("Сумма к возврату 2 340,00 ₽" in text) is refund_shown
    assert_tidy(text)


# --- filters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        (15230.5, "RUB", "15 230,50 ₽"),
        (0, "RUB", "0,00 ₽"),
        (999, "RUB", "999,00 ₽"),
        (1000, None, "1 000,00 ₽"),
        (Decimal("1234567.895"), "RUB", "1 234 567,90 ₽"),
        ("15230.5", "RUB", "15 230,50 ₽"),
        ("15 230,5", "RUB", "15 230,50 ₽"),
        (-42.1, "RUB", "-42,10 ₽"),
        (0.1 + 0.2, "RUB", "0,30 ₽"),
        (10, "USD", "10,00 $"),
        (10, "eur", "10,00 €"),
        (10, "KZT", "10,00 KZT"),
    ],
)
def test_money(value: Any, currency: Any, expected: str) -> None:
    assert money(value, currency) == expected


@pytest.mark.parametrize("value", ["abc", "", None, True, float("nan"), "inf", [1]])
def test_money_rejects_non_numbers(value: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        money(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-27", "27.11.2026"),
        ("2026-11-27T10:15:00+03:00", "27.11.2026"),
        ("2026-11-27T23:59:59Z", "27.11.2026"),
        (date(2026, 1, 5), "05.01.2026"),
        (datetime(2026, 1, 5, 8, 0), "05.01.2026"),
        ("вчера", "вчера"),
        ("27.11.2026", "27.11.2026"),
        (42, 42),
    ],
)
def test_date_ru(value: Any, expected: Any) -> None:
    assert date_ru(value) == expected


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "позиций"),
        (1, "позиция"),
        (2, "позиции"),
        (4, "позиции"),
        (5, "позиций"),
        (11, "позиций"),
        (12, "позиций"),
        (14, "позиций"),
        (21, "позиция"),
        (22, "позиции"),
        (25, "позиций"),
        (101, "позиция"),
        (111, "позиций"),
        (-1, "позиция"),
        ("3", "позиции"),
        (1.5, "позиции"),
        (Decimal("2.0"), "позиции"),
    ],
)
def test_plural_ru(n: Any, expected: str) -> None:
    assert plural_ru(n, "позиция", "позиции", "позиций") == expected


def test_filters_inside_templates(renderer: Renderer) -> None:
    source = (
        "{{ document.amount|money }} / {{ document.amount|money('EUR') }} / "
        "{{ document.date|date_ru }} / {{ document.lines|length }} "
        "{{ document.lines|length|plural_ru('позиция', 'позиции', 'позиций') }} / "
        "{{ plural_ru(21, 'товар', 'товара', 'товаров') }}"
    )
    text = renderer.render_source(source, full_context("client_order.created"))
    assert text == "15 230,50 ₽ / 15 230,50 € / 27.11.2026 / 4 позиции / товар"


# --- per-client templates -----------------------------------------------------------


def test_per_client_template(renderer: Renderer) -> None:
    source = (
        "{{ client.name }}, заказ №{{ document.number }} ждёт вас.   \n"
        "{% if manager %}Ваш менеджер: {{ manager.name }}.{% endif %}\n\n"
    )
    first = renderer.render_source(source, full_context("client_order.ready"))
    assert first == "ООО Ромашка, заказ №ЗК-000123 ждёт вас.\nВаш менеджер: Иван Петров."
    second = renderer.render_source(source, minimal_context("client_order.ready"))
    assert second == "Пётр, заказ №Д-1 ждёт вас."


def test_per_client_templates_are_cached_in_a_bounded_lru(renderer: Renderer) -> None:
    context = minimal_context("client_order.ready")
    limit = limits.SOURCE_CACHE_SIZE
    for i in range(limit + 10):
        assert renderer.render_source(f"Заказ {{{{ document.number }}}} #{i}", context)
    assert len(renderer._sources) == limit
    compiled = renderer._compile_source("Заказ {{ document.number }} #0")
    assert compiled is renderer._compile_source("Заказ {{ document.number }} #0")


def test_check_source(renderer: Renderer) -> None:
    renderer.check_source("Заказ {{ document.number }}")
    with pytest.raises(RenderError, match="syntax error"):
        renderer.check_source("Заказ {{ document.number ")


def test_template_source_size_is_limited(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match="longer than"):
        renderer.render_source("x" * (limits.MAX_SOURCE_CHARS + 1), {})


# --- errors -------------------------------------------------------------------------


def test_missing_variable_names_the_path_and_line(renderer: Renderer) -> None:
    context = build_context(
        event=event_of("x"),
        client=CLIENT,
        manager=None,
        document={"kind": "client_order"},
        company=None,
    )
    with pytest.raises(RenderError) as caught:
        renderer.render_source("Здравствуйте!\nЗаказ {{ document.number }} готов.", context)
    assert str(caught.value) == (
        "per-client template line 2: 'document' has no attribute 'number'"
    )
    assert caught.value.lineno == 2


def test_missing_nested_value_and_element(renderer: Renderer) -> None:
    context = full_context("client_order.created")
    with pytest.raises(RenderError, match=r"'document\.lines\[0\]' has no attribute 'colour'"):
        renderer.render_source("{{ document.lines[0].colour }}", context)
    with pytest.raises(RenderError, match=r"'document\.lines' has no element 10"):
        renderer.render_source("{{ document.lines[10] }}", context)
    with pytest.raises(RenderError, match="'nothing' is undefined"):
        renderer.render_source("{{ nothing }}", context)


def test_missing_parents_chain_for_defined_and_default(renderer: Renderer) -> None:
    text = renderer.render_source(
        "{{ document.extra.a.b.c is defined }} [{{ document.nope.x|default('-') }}]",
        minimal_context("client_order.ready"),
    )
    assert text == "False [-]"
    with pytest.raises(RenderError, match="'document' has no attribute 'nope'"):
        renderer.render_source(
            "{% if document.nope.x %}x{% endif %}y", minimal_context("client_order.ready")
        )


def test_file_template_error_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.txt.j2").write_text("Заказ\n{{ document.number }}\n", encoding="utf-8")
    (tmp_path / "broken.txt.j2").write_text("a\nb {% if %}\n", encoding="utf-8")
    own = Renderer(tmp_path)
    with pytest.raises(RenderError) as caught:
        own.render("bad.txt.j2", {"document": {}})
    assert (
        str(caught.value) == "template 'bad.txt.j2' line 2: 'document' has no attribute 'number'"
    )
    with pytest.raises(
        RenderError, match=re.escape("template 'broken.txt.j2' line 2: syntax error")
    ):
        own.render("broken.txt.j2", {})
    with pytest.raises(RenderError, match=re.escape("template 'nope.txt.j2' not found")):
        own.render("nope.txt.j2", {})
    with pytest.raises(RenderError, match="not found"):
        own.render("../etc/passwd", {})


def test_error_in_an_included_file_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "sign.txt.j2").write_text("\n\n{{ company.name }}", encoding="utf-8")
    own = Renderer(tmp_path)
    with pytest.raises(RenderError) as caught:
        own.render_source("Заказ готов.\n{% include 'parts/sign.txt.j2' %}", {"company": {}})
    assert str(caught.value) == (
        "template 'parts/sign.txt.j2' line 3: 'company' has no attribute 'name'"
    )
    assert (caught.value.template, caught.value.lineno) == ("parts/sign.txt.j2", 3)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("Заказ {{ document.number ", "syntax error"),
        ("{% if %}", "syntax error"),
        ("{% for x in %}{% endfor %}", "syntax error"),
        ("{{ x|no_such_filter }}", "No filter named 'no_such_filter'"),
        ("{% endif %}", "syntax error"),
    ],
)
def test_syntax_errors(renderer: Renderer, source: str, reason: str) -> None:
    with pytest.raises(RenderError, match=re.escape(reason)):
        renderer.render_source(source, {})


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ 'x'|money }}", "'x' is not a number"),
        ("{{ document.number|money }}", "is not a number"),
        ("{{ none|money }}", "expected a number"),
        ("{{ 'a' + 1 }}", "TypeError"),
        ("{{ client.name|round }}", "TypeError"),
        ("{% include 'events/nothing.j2' %}", "template 'events/nothing.j2' not found"),
        ("{{ '%d'|format('x') }}", "TypeError"),
        ("", "rendered text is empty"),
        ("   \n  {# только комментарий #}  \n", "rendered text is empty"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursion too deep"),
    ],
)
def test_runtime_failures_become_render_errors(
    renderer: Renderer, source: str, reason: str
) -> None:
    with pytest.raises(RenderError, match=re.escape(reason)):
        renderer.render_source(source, full_context("client_order.ready"))


# --- the sandbox --------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ ''.__class__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__.os }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ self._TemplateReference__context }}",
        "{{ self.__dict__ }}",
        "{{ config }}",
        "{{ config.items() }}",
        "{{ lipsum.__globals__ }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ range.__self__ }}",
        "{{ request.application.__globals__ }}",
        "{{ document.__class__.__init__.__globals__ }}",
        "{{ document.items.__self__ }}",
        "{{ (document|attr('__class__')).__mro__ }}",
        "{{ document|attr('__class__') }}",
        "{{ '{0.__class__}'.format(document) }}",
        "{{ '%s'|format(document.__class__) }}",
        "{{ document.update({'number': 1}) }}",
        "{{ document.lines.append(1) }}",
        "{{ 'x'.translate({120: 'y'}) }}",
        "{{ (1).to_bytes(8, 'big') }}",
        "{{ 'a'|safe }}",
    ],
)
def test_sandbox_escapes_are_refused(renderer: Renderer, source: str) -> None:
    with pytest.raises(RenderError) as caught:
        renderer.render_source(source, full_context("client_order.ready"))
    message = str(caught.value)
    assert message.startswith("per-client template")
    assert any(
        word in message for word in ("unsafe", "undefined", "not allowed", "No filter", "has no")
    ), message


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{% for i in range(10**9) %}x{% endfor %}", "range too big"),
        ("{% for i in range(100000) %}x{% endfor %}", "rendered text too long"),
        ("{{ 'x' * (" + str(MAX_OUTPUT_CHARS) + " + 1) }}", "rendered text too long"),
        ("{{ 'x' * 10**9 }}", "longer than"),
        ("{{ ['x'] * 10**9 }}", "longer than"),
        ("{{ 7 ** (10**9) }}", "too large a power"),
        ("{{ '%0999999999d' % 1 }}", "format width"),
        ("{{ '%*d' % (10**9, 1) }}", "format width"),
        ("{{ '{:>999999999}'.format(1) }}", "format width"),
        ("{{ '{:>{w}}'.format(1, w=10**9) }}", "nested format"),
        ("{{ '%999999999s'|format(1) }}", "format width"),
        ("{{ 'a'.center(10**9) }}", "longer than"),
        ("{{ 'a'.zfill(10**9) }}", "longer than"),
        ("{{ 'ab'.replace('', 'x' * 9000) }}", "longer than"),
        ("{{ 'aaaa'|replace('a', 'x' * 9000) }}", "longer than"),
        ("{{ range(100000)|join('x' * 1000) }}", "longer than"),
        ("{{ ('x' * 1000).join(range(100000)|map('string')) }}", "longer than"),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
            "longer than",
        ),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
            "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
            "longer than",
        ),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "too much work",
        ),
        (
            "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% else %}x{% endif %}"
            "{% endmacro %}{{ f(60)|length }}",
            "longer than",
        ),
        (
            "{% macro f(n) %}{% if n %}{% set a = f(n - 1) %}{% set b = f(n - 1) %}"
            "{% endif %}{% endmacro %}{{ f(60) }}.",
            "too much work|took longer",
        ),
        (
            "{% for i in range(1000) %}{% set s = range(100000)|list %}{% endfor %}.",
            "too much text",
        ),
        (
            "{% for i in range(3000) %}{% set s = 'x' * 9999 %}{% endfor %}{{ s }}",
            "too much text",
        ),
    ],
)
def test_resource_bombs_are_stopped(renderer: Renderer, source: str, reason: str) -> None:
    started = time.monotonic()
    with pytest.raises(RenderError, match=reason):
        renderer.render_source(source, full_context("client_order.ready"))
    assert time.monotonic() - started < limits.MAX_RENDER_SECONDS + 1


def test_output_at_the_limit_is_fine(renderer: Renderer) -> None:
    text = renderer.render_source(
        "{{ 'ж' * " + str(MAX_OUTPUT_CHARS) + " }}", minimal_context("client_order.ready")
    )
    assert len(text) == MAX_OUTPUT_CHARS


def test_ordinary_template_features_still_work(renderer: Renderer) -> None:
    source = (
        "{% for line in document.lines if line.article is defined %}"
        "{{ loop.index }}/{{ loop.length }} {{ line.brand|upper }}{{ ', ' if not loop.last }}"
        "{% endfor %}; {{ document.lines|map(attribute='quantity')|sum }} шт.; "
        "{{ document.lines|join(', ', attribute='name')|truncate(20, true, '…', 0) }}; "
        "{{ '%05.1f'|format(3.14159) }}; {{ '{:,}'.format(1234567) }}; "
        "{{ 'a,b'.split(',')|join('+') }}; {{ {'k': 'v'}.get('k') }}; "
        "{% set ns = namespace(n=0) %}{% for i in range(5) %}{% set ns.n = ns.n + i %}"
        "{% endfor %}{{ ns.n }}"
    )
    text = renderer.render_source(source, full_context("client_order.created"))
    assert text == (
        "1/3 MANN, 2/3 NGK, 3/3 BOSCH; 8 шт.; Фильтр масляный, Св…; 003.1; 1,234,567; a+b; v; 10"
    )


def test_json_keys_win_over_dict_methods(renderer: Renderer) -> None:
    context = build_context(
        event=event_of("x"),
        client=CLIENT,
        manager=None,
        document={"number": "1", "items": ["a", "b"], "values": 3},
        company=None,
    )
    assert (
        renderer.render_source("{{ document.items|join(',') }} {{ document.values }}", context)
        == "a,b 3"
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from(
            [
                "{{",
                "}}",
                "{%",
                "%}",
                "{#",
                "#}",
                " ",
                "x",
                "document",
                ".",
                "number",
                "lines",
                "|",
                "money",
                "date_ru",
                "length",
                "(",
                ")",
                "[",
                "]",
                "0",
                "1",
                "'",
                "~",
                "*",
                "+",
                "%",
                "for",
                "in",
                "if",
                "endif",
                "endfor",
                "set",
                "=",
                "__class__",
                "range",
                "client",
                "name",
                "none",
                "10**9",
                "Заказ",
                "\n",
            ]
        ),
        max_size=30,
    ).map("".join)
)
def test_any_source_renders_or_raises_render_error(renderer: Renderer, source: str) -> None:
    outcome: str | RenderError
    try:
        outcome = renderer.render_source(source, full_context("client_order.created"))
    except RenderError as exc:
        outcome = exc
    assert isinstance(outcome, (str, RenderError))
    assert str(outcome)


# --- context ------------------------------------------------------------------------


def test_build_context_copies_into_plain_data() -> None:
    class Row:
        def __str__(self) -> str:
            return "row"

    document: dict[str, Any] = {
        "number": "1",
        "date": date(2026, 11, 27),
        "amount": Decimal("10.50"),
        "lines": ({"n": 1},),
        "extra": {"at": datetime(2026, 11, 27, 10, 15), "obj": Row()},
    }
    context = build_context(
        event=event_of("x"), client=CLIENT, manager=None, document=document, company=None
    )
    assert set(context) == {"event", "client", "manager", "document", "company"}
    assert context["manager"] is None and context["company"] is None
    doc = context["document"]
    assert doc == {
        "number": "1",
        "date": "2026-11-27",
        "amount": Decimal("10.50"),
        "lines": [{"n": 1}],
        "extra": {"at": "2026-11-27T10:15:00", "obj": "row"},
    }
    doc["extra"]["at"] = "changed"
    assert document["extra"]["at"] == datetime(2026, 11, 27, 10, 15)
