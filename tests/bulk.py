"""Many due notifications at once, written straight into the journal (for load scenarios)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert

from storage.database import create_database
from storage.models import Client, Notification, NotificationHistory, TelegramLink
from storage.types import utcnow

TEXT = "Заказ №ЗК-{n:06d} готов к выдаче. Ждём вас!"


@dataclass(frozen=True, slots=True)
class Seeded:
    notification_ids: list[int]
    chat_of: dict[int, int]
    """Notification id → the chat it goes to (Telegram bursts only)."""


async def seed_pending(url: str, *, count: int, chats: int = 0, batch: int = 500) -> Seeded:
    """`count` pending notifications for distinct clients.

    With `chats`, clients share that many linked Telegram chats round-robin (so each chat
    receives count/chats messages); without, every client has only a phone (SMS route).
    """
    db = create_database(url)
    now = utcnow()
    ids: list[int] = []
    chat_of: dict[int, int] = {}
    try:
        async with db.transaction() as session:
            clients = [
                {
                    "id": f"B-{i}",
                    "name": f"Клиент {i}",
                    "phone": f"+7916{i:07d}",
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(count)
            ]
            for start in range(0, count, batch):
                await session.execute(insert(Client.__table__), clients[start : start + batch])
            if chats:
                links = [
                    {
                        "chat_id": 9_000_000 + i % chats,
                        "user_id": 9_000_000 + i % chats,
                        "client_id": f"B-{i}",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in range(count)
                ]
                for start in range(0, count, batch):
                    await session.execute(
                        insert(TelegramLink.__table__), links[start : start + batch]
                    )
            rows = [
                {
                    "event_type": "client_order.ready",
                    "recipient": "client",
                    "client_id": f"B-{i}",
                    "channel": "telegram" if chats else "sms",
                    "phone": f"+7916{i:07d}",
                    "status": "pending",
                    "text": TEXT.format(n=i),
                    "next_attempt_at": now,
                    "queued_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(count)
            ]
            table = Notification.__table__
            for start in range(0, count, batch):
                result = await session.execute(
                    insert(table).returning(table.c.id, sort_by_parameter_order=True),
                    rows[start : start + batch],
                )
                ids.extend(row[0] for row in result)
            await session.execute(
                insert(NotificationHistory.__table__),
                [
                    {
                        "notification_id": nid,
                        "at": now,
                        "from_status": None,
                        "to_status": "pending",
                        "actor": "test",
                    }
                    for nid in ids
                ],
            )
        if chats:
            chat_of = {nid: 9_000_000 + i % chats for i, nid in enumerate(ids)}
    finally:
        await db.dispose()
    return Seeded(notification_ids=ids, chat_of=chat_of)
