"""SQLAlchemy 2 models: the directory, events, the notification journal (which is also the
delivery queue) and its status history, and stored settings."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.types import BigId, JsonDoc, UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Event(Base):
    """One ERP event, exactly once per `event_id` (the idempotency key)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    client_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc)

    __table_args__ = (Index(None, "received_at"),)


class Manager(Base):
    """A responsible manager from the ERP's directory."""

    __tablename__ = "managers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=sql_text("false")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index(None, "phone"),)


class Client(Base):
    """A counterparty (контрагент) from the ERP's directory."""

    __tablename__ = "clients"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(32))
    manager_id: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(255))
    blocked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("false"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index(None, "phone"), Index(None, "manager_id"))


class ClientTypeSetting(Base):
    """The client card's «Уведомления» tab: per event type, send or not, own templates."""

    __tablename__ = "client_type_settings"

    client_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True
    )
    event_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    send: Mapped[bool | None] = mapped_column(Boolean)
    template_client: Mapped[str | None] = mapped_column(Text)
    """Jinja2 source of the client's own template (sandboxed)."""
    template_manager: Mapped[str | None] = mapped_column(Text)
    template_attachment: Mapped[str | None] = mapped_column(Text)
    """The seed's «Шаблоны вложений»: HTML (Jinja2, sandboxed, autoescaped) of a document
    made for the client from this type's events, kept on the card and checked like the
    texts."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class TelegramLink(Base):
    """A Telegram chat linked to a client or a manager."""

    __tablename__ = "telegram_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    client_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("clients.id", ondelete="CASCADE")
    )
    manager_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("managers.id", ondelete="CASCADE")
    )
    stopped: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("false"))
    """The user sent /stop: the reserve route applies until /start."""
    blocked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("false"))
    """Telegram said 403: the user blocked the bot (cleared by my_chat_member)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("chat_id", "client_id"),
        UniqueConstraint("chat_id", "manager_id"),
        Index(None, "client_id"),
        Index(None, "manager_id"),
    )


class Notification(Base):
    """One message to one recipient: the journal entry and the delivery job at once."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_pk: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("events.id", ondelete="SET NULL")
    )
    event_type: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(16))
    """`client` or `manager`."""
    client_id: Mapped[str | None] = mapped_column(String(64))
    manager_id: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(16))
    """`telegram`, `sms`, or None when no route exists."""
    phone: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    telegram_text: Mapped[str | None] = mapped_column(Text)
    """The type's Telegram text (HTML), sent instead of `text` when the route is Telegram."""
    encoding: Mapped[str | None] = mapped_column(String(8))
    units: Mapped[int | None] = mapped_column(Integer)
    segments: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    """Why the row is in its status: the skip reason, the last error."""
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=sql_text("0"))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When the row last entered the queue (created pending, confirmed, resent): the retry
    policy's maximum age counts from here."""
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider: Mapped[str | None] = mapped_column(String(64))
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    cost: Mapped[Decimal | None] = mapped_column(Numeric(12, 4))
    provider_parts: Mapped[int | None] = mapped_column(Integer)
    """How many SMS the provider says it billed (our own count is `segments`)."""
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def not_before(self) -> datetime | None:
        """When a `scheduled` row (held by quiet hours) may go out; None otherwise."""
        return self.next_attempt_at if self.status == "scheduled" else None

    __table_args__ = (
        # The queue's index: only rows a worker may claim are in it, so it stays small.
        Index(
            "ix_notifications_due",
            "next_attempt_at",
            postgresql_where=sql_text("status IN ('pending', 'sending', 'scheduled')"),
            sqlite_where=sql_text("status IN ('pending', 'sending', 'scheduled')"),
        ),
        Index(None, "event_pk"),
        Index(None, "status", "id"),
        Index(None, "client_id", "id"),
        Index(None, "provider", "provider_message_id"),
    )


class NotificationHistory(Base):
    """Every change of a notification's status: when, who, why."""

    __tablename__ = "notification_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    notification_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("notifications.id", ondelete="CASCADE")
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (Index(None, "notification_id", "id"),)


class StoredSetting(Base):
    """Settings changed through the API; they override the config file."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(128))


# --- Templates edited through the API (migration 0007) -------------------------------------


class TemplateVersion(Base):
    """One saved version of an event type's template; versions are never changed."""

    __tablename__ = "template_versions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(32))
    """`client`, `manager`, `client_telegram` or `manager_telegram`."""
    version: Mapped[int] = mapped_column(Integer)
    """1, 2, … per code and recipient."""
    source: Mapped[str] = mapped_column(Text)
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))

    __table_args__ = (UniqueConstraint("code", "recipient", "version"),)


class TemplateCurrent(Base):
    """The stored version in use for a code and recipient; no row: the template files are."""

    __tablename__ = "template_current"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    changed_by: Mapped[str] = mapped_column(String(128))

    __table_args__ = (
        ForeignKeyConstraint(
            ["code", "recipient", "version"],
            [TemplateVersion.code, TemplateVersion.recipient, TemplateVersion.version],
        ),
    )


# --- The Telegram bot (migration 0003) -----------------------------------------------------


class LinkToken(Base):
    """A one-time deep-link token: `t.me/<bot>?start=<token>` links a chat at once."""

    __tablename__ = "link_tokens"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("clients.id", ondelete="CASCADE")
    )
    manager_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("managers.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by_user_id: Mapped[int | None] = mapped_column(BigInteger)
    """The first Telegram user who used it; the token is bound to them."""


class TelegramUpdate(Base):
    """Update ids already handled: Telegram's own retries must not act twice."""

    __tablename__ = "telegram_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index(None, "received_at"),)


class ChatMessage(Base):
    """One message of the chat between a client and the shop (relayed through the bot)."""

    __tablename__ = "chat_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    client_id: Mapped[str | None] = mapped_column(String(64))
    manager_id: Mapped[str | None] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(8))
    """`in` (client → shop) or `out` (shop → client)."""
    chat_id: Mapped[int] = mapped_column(BigInteger)
    """The chat the message was written in."""
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    relayed_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    """Where the bot relayed it (the manager's chat, or the client's)."""
    relayed_message_id: Mapped[int | None] = mapped_column(BigInteger)
    """The relayed copy's id: a manager's reply to it is routed back to the client."""
    text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index(None, "relayed_chat_id", "relayed_message_id"),
        Index(None, "client_id", "id"),
    )


class ParkedReceipt(Base):
    """A provider's final delivery state for a message id we have not recorded yet.

    A fast provider can call back before the worker's own "sent" row (which carries the
    provider's id) is committed; the receipt waits here and the receipts job applies it once
    the row is there (or drops it after two days).
    """

    __tablename__ = "parked_receipts"

    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider_message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UnmatchedContact(Base):
    """A shared phone that matched no client or manager, kept for the managers."""

    __tablename__ = "unmatched_contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    phone: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ManagerPrompt(Base):
    """A message with inline buttons sent to a manager about one notification."""

    __tablename__ = "manager_prompts"

    notification_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("notifications.id", ondelete="CASCADE"), primary_key=True
    )
    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    message_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# --- The scheduler (migration 0004) --------------------------------------------------------


class JobRun(Base):
    """One run of a periodic job, claimed by its time slot so one replica runs it."""

    __tablename__ = "job_runs"

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    claimed_by: Mapped[str] = mapped_column(String(128))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)


class BalanceCheck(Base):
    """Every reading of an SMS provider's balance (or the failure to read it)."""

    __tablename__ = "balance_checks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(64))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    balance: Mapped[Decimal | None] = mapped_column(Numeric(14, 4))
    currency: Mapped[str | None] = mapped_column(String(8))
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index(None, "provider", "checked_at"),)


class AlertState(Base):
    """Whether an alert of a kind is armed for a provider (fires once per crossing)."""

    __tablename__ = "alert_states"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    """`low_balance` or `balance_unreadable`."""
    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("false"))
    """True while the condition holds and its alert has been raised."""
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default=sql_text("0"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class OutboxEmail(Base):
    """An e-mail to send; kept until the SMTP server took it, so an outage loses nothing."""

    __tablename__ = "email_outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    recipients: Mapped[list[str]] = mapped_column(JsonDoc)
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=sql_text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index(None, "sent_at", "id"),)


# --- The web desk (migration 0008) ---------------------------------------------------------


class DeskToken(Base):
    """A one-time sign-in link to the web desk, given to a manager by the bot's `/desk`."""

    __tablename__ = "desk_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    """SHA-256 of the link's token (hex): the database never holds a usable link."""
    manager_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("managers.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "expires_at"),)


# --- The living order card (migration 0011) ------------------------------------------------


class TelegramCard(Base):
    """The client's current Telegram message about one document in one chat (CONTRACT §9):
    later events about the document edit it instead of sending a new one."""

    __tablename__ = "telegram_cards"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64))
    doc_kind: Mapped[str] = mapped_column(String(64))
    doc_number: Mapped[str] = mapped_column(String(128))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """When this message was sent: Telegram refuses edits some time after that."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("client_id", "doc_kind", "doc_number", "chat_id"),)


# --- Buttons back to the ERP (migration 0012) ----------------------------------------------


class ErpActionPress(Base):
    """A client's press of an ERP button, kept until the ERP took it (the outbox): one row
    per notification and action, so pressing twice delivers once."""

    __tablename__ = "erp_action_presses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    notification_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("notifications.id", ondelete="CASCADE")
    )
    action: Mapped[str] = mapped_column(String(32))
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger)
    pressed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    """`pending` until the ERP answered 2xx, then `delivered`."""
    body: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    """What is POSTed, fixed at the press (the event may be pruned before delivery)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=sql_text("0"))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("notification_id", "action"),
        Index(None, "status", "next_attempt_at"),
    )
