"""A manager reading `/status` of a notification that went into the living order card sees
in Russian what happened to the card."""

from __future__ import annotations

import pytest

from dispatch.journal.reasons_ru import reason_ru


@pytest.mark.parametrize(
    ("reason", "russian"),
    [
        ("edited the order card (message 7)", "карточка заказа изменена (сообщение 7)"),
        (
            "sent a new order card (message 9); the order card (message 7) could not be "
            "edited: Bad Request: message to edit not found",
            "отправлена новая карточка заказа (сообщение 9); карточку заказа (сообщение 7) "
            "изменить не удалось: сообщение для изменения не найдено",
        ),
        (
            "sent a new order card (message 9); the order card (message 7) is older than 48 h",
            "отправлена новая карточка заказа (сообщение 9); карточка заказа (сообщение 7) "
            "старше 48 ч",
        ),
    ],
)
def test_order_card_reasons_read_in_russian(reason: str, russian: str) -> None:
    assert reason_ru(reason) == russian
