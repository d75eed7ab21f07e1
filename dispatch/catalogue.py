"""The catalogue of ERP event types: the 16 notification templates of the seed.

Codes and order follow CONTRACT.md §3; titles and descriptions are the seed's Russian
wording, so the admin API can show them to the people who read the ERP manual.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["EVENT_TYPES", "EventType", "EventTypeDefaults", "get_event_type", "sample_event"]

#: Folder (inside the ``templates`` package) that holds the per-type templates.
TEMPLATE_FOLDER = "events"


@dataclass(frozen=True, slots=True)
class EventTypeDefaults:
    """Default settings of an event type (CONTRACT §3); the seed's five flags."""

    confirm_before_send: bool = False
    send_to_client: bool = True
    send_to_manager: bool = False
    tracked_by_manager: bool = False
    default_for_new_clients: bool = True


@dataclass(frozen=True, slots=True)
class EventType:
    """One ERP event type: its code, Russian title and description, and defaults."""

    code: str
    title: str
    description: str
    defaults: EventTypeDefaults = field(default_factory=EventTypeDefaults)

    @property
    def template_client(self) -> str:
        """Default client template, relative to the templates directory."""
        return f"{TEMPLATE_FOLDER}/{self.code}.client.txt.j2"

    @property
    def template_manager(self) -> str:
        """Default manager template, relative to the templates directory."""
        return f"{TEMPLATE_FOLDER}/{self.code}.manager.txt.j2"


# (code, title, description) in the order of CONTRACT §3 (which is the seed's order).
_TYPES: tuple[tuple[str, str, str], ...] = (
    (
        "vin_request.posted",
        "Проводка VIN-запроса",
        "При проведении документа «VIN-запрос».",
    ),
    (
        "client_order.created",
        "Новый Заказ клиента",
        "При создании нового документа «Заказ клиента».",
    ),
    (
        "client_order.posted",
        "Проводка Заказа клиента",
        "При проведении документа «Заказ клиента».",
    ),
    (
        "client_refusal.posted_by_order",
        "Проводка Отказа клиента (в разрезе ЗК)",
        "При проведении документа «Отказ клиента» на основании «Заказа клиента».",
    ),
    (
        "client_refusal.posted",
        "Проводка Отказа клиента (в разрезе ОК)",
        "При проведении документа «Отказ клиента».",
    ),
    (
        "supplier_refusal.posted_by_order",
        "Проводка Отказа поставщика (в разрезе ЗК)",
        "При проведении документа «Отказ поставщика».",
    ),
    (
        "receipt_invoice.posted",
        "Проводка Приходной накладной",
        "При проведении документа «Приходная накладная».",
    ),
    (
        "payment.registered",
        "Зарегистрирован платеж",
        "При проведении финансового документа «ПКО» или «Платежное поручение входящее».",
    ),
    (
        "work_order.completed",
        "Завершение работ по Заказ-Наряду",
        "При установке состояния «Работы завершены» по документу «Заказ-Наряд».",
    ),
    (
        "client_order.ready",
        "Заказ клиента готов к выдаче",
        "Когда все позиции в «Заказе клиента» будут в состоянии «Резерв», т.е. на складе.",
    ),
    (
        "counterparty.category_changed",
        "Изменение категории контрагента",
        "При смене категории у клиента.",
    ),
    (
        "counterparty.block_changed",
        "Изменение статуса блокировки контрагента",
        "При изменении состояния блокировки контрагента.",
    ),
    (
        "transfer.posted_by_order",
        "Проводка Перемещения (в разрезе ЗК)",
        "При проведении документа «Перемещение».",
    ),
    (
        "repair_task.created",
        "Новое Задание в ремзону",
        "При создании нового задания в ремзону.",
    ),
    (
        "repair_task.changed",
        "Изменения задания в ремзону",
        "При изменении данных по заданию в ремзону.",
    ),
    (
        "client_return.decided",
        "Решение по Возврату клиента",
        "При отправке уведомления командой «Уведомить клиента» по документу «Возврат клиента».",
    ),
)

# Every type starts from the same contract defaults; per-type values come from settings.
_DEFAULTS = EventTypeDefaults()

#: All event types by code, in the order of CONTRACT §3 (dicts keep insertion order).
EVENT_TYPES: Mapping[str, EventType] = MappingProxyType(
    {code: EventType(code, title, description, _DEFAULTS) for code, title, description in _TYPES}
)


def get_event_type(code: str) -> EventType | None:
    """Return the event type with this code, or ``None`` when the code is unknown."""
    return EVENT_TYPES.get(code)


# --------------------------------------------------------------------------- samples

# One typical event per type, with every field the default templates read, so a
# per-client template can be tried before it is stored (PUT /api/v1/clients/{id}).
_SAMPLE_LINES = (
    {"article": "OC90", "brand": "Knecht", "name": "Фильтр масляный", "quantity": 2,
     "price": 615.25},
    {"article": "0986452041", "brand": "Bosch", "name": "Свеча зажигания", "quantity": 4,
     "price": 390},
)  # fmt: skip
_CAR = {"car": "Kia Rio А123ВС777", "vin": "Z94CB41AAHR123456"}
_ORDER = {"order_number": "ЗК-000123"}
# code -> (document kind, number, lines?, extra)
_SAMPLES: dict[str, tuple[str, str, bool, dict[str, Any]]] = {
    "vin_request.posted": ("vin_request", "VR-000045", False, _CAR),
    "client_order.created": ("client_order", "ЗК-000123", True, {}),
    "client_order.posted": ("client_order", "ЗК-000123", True, {}),
    "client_refusal.posted_by_order": ("client_refusal", "ОК-000017", True, _ORDER),
    "client_refusal.posted": ("client_refusal", "ОК-000018", True, {}),
    "supplier_refusal.posted_by_order": (
        "supplier_refusal", "ОП-000009", True, {**_ORDER, "supplier": "Армтек"},
    ),
    "receipt_invoice.posted": (
        "receipt_invoice", "ПН-000311", True, {**_ORDER, "supplier": "Армтек"},
    ),
    "payment.registered": ("cash_receipt", "ПКО-000456", False, {**_ORDER, "balance": -4800.0}),
    "work_order.completed": ("work_order", "ЗН-000078", False, _CAR),
    "client_order.ready": (
        "client_order", "ЗК-000123", True,
        {"pickup_point": "ул. Ленина, 5", "pickup_hours": "пн–пт 9:00–19:00, сб 10:00–16:00"},
    ),
    "counterparty.category_changed": (
        "counterparty", "КА-000512", False, {"old_category": "Розница", "new_category": "Опт"},
    ),
    "counterparty.block_changed": (
        "counterparty", "КА-000512", False,
        {"blocked": True, "reason": "превышен кредитный лимит"},
    ),
    "transfer.posted_by_order": (
        "transfer", "ПМ-000034", True,
        {**_ORDER, "from_warehouse": "Центральный", "to_warehouse": "Южный"},
    ),
    "repair_task.created": (
        "repair_task", "РЗ-000051", False, {**_CAR, "bay": "2", "state": "В работе"},
    ),
    "repair_task.changed": (
        "repair_task", "РЗ-000051", False,
        {**_CAR, "bay": "2", "state": "Ожидание запчастей", "old_state": "В работе"},
    ),
    "client_return.decided": (
        "client_return", "ВК-000021", False,
        {"decision": "approved", "reason": "брак производителя"},
    ),
}  # fmt: skip


def sample_event(code: str) -> dict[str, Any]:
    """A typical ERP event body of type ``code`` (CONTRACT §2), a fresh copy each call."""
    kind, number, with_lines, extra = _SAMPLES[code]
    return {
        "event_id": f"sample-{code}",
        "type": code,
        "occurred_at": "2026-11-27T10:15:00+03:00",
        "client": {
            "id": "C-1001",
            "name": "ООО Ромашка",
            "phone": "+79161234567",
            "manager_id": "M-7",
            "category": "Опт",
            "blocked": False,
        },
        "manager": {"id": "M-7", "name": "Иван Петров", "phone": "+79031234567"},
        "document": {
            "kind": kind,
            "number": number,
            "date": "2026-11-27",
            "amount": 15230.5,
            "currency": "RUB",
            "lines": copy.deepcopy(list(_SAMPLE_LINES)) if with_lines else [],
            "extra": copy.deepcopy(extra),
        },
    }
