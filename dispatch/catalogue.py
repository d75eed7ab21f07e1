"""The catalogue of ERP event types: the 16 notification templates of the seed.

Codes and order follow CONTRACT.md §3; titles and descriptions are the seed's Russian
wording, so the admin API can show them to the people who read the ERP manual.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["EVENT_TYPES", "EventType", "EventTypeDefaults", "get_event_type"]

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
