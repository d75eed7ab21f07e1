"""Realistic ERP event bodies for tests."""

from __future__ import annotations

import copy
import uuid
from typing import Any

ALL_TYPES = (
    "vin_request.posted",
    "client_order.created",
    "client_order.posted",
    "client_refusal.posted_by_order",
    "client_refusal.posted",
    "supplier_refusal.posted_by_order",
    "receipt_invoice.posted",
    "payment.registered",
    "work_order.completed",
    "client_order.ready",
    "counterparty.category_changed",
    "counterparty.block_changed",
    "transfer.posted_by_order",
    "repair_task.created",
    "repair_task.changed",
    "client_return.decided",
)

MANAGER = {"id": "M-7", "name": "Иван Петров", "phone": "+79031234567"}


def make_event(
    type_: str = "client_order.ready",
    *,
    event_id: str | None = None,
    client: dict[str, Any] | None = None,
    manager: dict[str, Any] | None = MANAGER,
    document: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An event as the ERP posts it; each part can be replaced."""
    body: dict[str, Any] = {
        "event_id": event_id or f"erp-{uuid.uuid4().hex[:12]}",
        "type": type_,
        "occurred_at": "2026-11-27T10:15:00+03:00",
        "client": client
        or {
            "id": "C-1001",
            "name": "ООО Ромашка",
            "phone": "+7 916 123-45-67",
            "manager_id": "M-7",
            "category": "Опт",
            "blocked": False,
        },
        "document": document
        or {
            "kind": "client_order",
            "number": "ЗК-000123",
            "date": "2026-11-27",
            "amount": 15230.50,
            "currency": "RUB",
            "lines": [
                {
                    "article": "OC90",
                    "brand": "Knecht",
                    "name": "Фильтр масляный",
                    "quantity": 2,
                    "price": 615.25,
                },
                {
                    "article": "0986452041",
                    "brand": "Bosch",
                    "name": "Фильтр масляный",
                    "quantity": 1,
                    "price": 14000,
                },
            ],
            "extra": {},
        },
    }
    if manager is not None:
        body["manager"] = copy.deepcopy(manager)
    return body
