"""Domain configuration: the seed's settings as typed models.

These are plain pydantic models so that `dispatch` needs nothing from the application shell;
`bot.settings` composes them into the process settings (TOML file + environment), and the
settings API stores overrides of `notify` and `event_types` in the database (see
`dispatch.runtime_config`).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dispatch.intake.quiet_hours import parse_window, parse_zone

NotifyMode = Literal["off", "test", "live"]
Service = Literal["telegram", "sms"]
Reserve = Literal["sms", "none"]
SmsKind = Literal["smsc", "smsru", "smsaero", "twilio", "http"]

DEFAULT_AUTO_REPLY = (
    "Здравствуйте! Чат с менеджером сейчас отключён. "
    "Пожалуйста, позвоните нам, и мы ответим на ваш вопрос."
)


class _Model(BaseModel):
    # The docstring under a field is its description (docs/CONFIGURATION.md is made of them).
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, use_attribute_docstrings=True
    )


class NotifySettings(_Model):
    """«Сервис отправки SMS»: the main block of the seed."""

    mode: NotifyMode = "test"
    """«Использовать отправку сообщений»: off | test | live."""
    service: Service = "telegram"
    """«Сервис отправки сообщений»: Telegram Bot or an SMS service."""
    reserve: Reserve = "sms"
    """«Резервный способ отправки сообщений» (used with service = telegram)."""
    sms_service: str | None = None
    """A name from [[sms_services]]; None takes the first one listed."""
    low_balance_threshold: Decimal = Field(default=Decimal(100), ge=0)
    """«Уведомлять об окончании пакета с SMS»: how many SMS (segments) may be left before
    the admins are warned; 0 = do not notify; the seed offers 50/100/200. The balance is
    converted with the price of one segment: the provider's price API (SMSC, SMS.ru), else
    the average recorded cost of the last sends, else the service's `price_per_sms`."""
    admin_emails: list[str] = Field(default_factory=list)
    """Who gets the alert e-mails (low balance, balance unreadable)."""
    chat_enabled: bool = False
    """«Использовать чат с клиентом»."""
    auto_reply: str = Field(default=DEFAULT_AUTO_REPLY, min_length=1, max_length=4000)
    """«Текст автоответа при отключенном чате»."""
    company_name: str | None = None
    """The shop's name, available to templates as `company.name`."""
    company_phone: str | None = None
    """The shop's phone, available to templates as `company.phone`."""
    telegram_cards: bool = False
    """The living order card: a client's later Telegram messages about the same document
    (`document.kind` + `document.number`) edit the earlier message, which shows the
    document's state and a dated line per step (`events/card.client_telegram.html.j2`),
    instead of arriving as new ones. A card too old to edit (48 h) or deleted is replaced
    by a new one. SMS keeps one message per event."""
    quiet_hours: str | None = None
    """Quiet hours, e.g. "21:00-09:00" (may cross midnight; empty or "none" = off): a
    client's notification created inside them is `scheduled` and goes out when they end,
    in the client's own `timezone` from the event, else `timezone` below. Urgent types
    and notifications to managers are not held."""
    timezone: str = "Europe/Moscow"
    """The IANA time zone quiet hours are counted in when the event's client has none."""

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours_window(cls, value: str | None) -> str | None:
        window = parse_window(value)
        return window.text if window is not None else None

    @field_validator("timezone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        parse_zone(value)
        return value

    @field_validator("admin_emails")
    @classmethod
    def _emails_look_like_emails(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address or address.startswith("@") or address.endswith("@"):
                raise ValueError(f"not an e-mail address: {address!r}")
        return value


class EventTypeSettings(_Model):
    """The five flags and two templates of one event type (the seed's «Шаблоны»)."""

    confirm_before_send: bool = False
    """«Запрос перед отправкой»."""
    send_to_client: bool = True
    """«Отправлять уведомление клиенту»."""
    send_to_manager: bool = False
    """«Отправлять уведомление ответственному менеджеру»."""
    tracked_by_manager: bool = False
    """«Событие отслеживается менеджером»: an opted-out client still gets a `not_sent` row."""
    default_for_new_clients: bool = True
    """«Значение отправки уведомлений для новых клиентов»."""
    template_client: str | None = None
    """A template file under templates/ for the client; None uses the event type's own."""
    template_manager: str | None = None
    """A template file under templates/ for the manager; None uses the event type's own."""
    urgent: bool = False
    """Goes out at once, even inside `notify.quiet_hours`."""


class EventTypeOverride(_Model):
    """A partial `EventTypeSettings`: what the config file or the API changed (a field left
    None keeps the type's own value; the fields' meaning is documented there)."""

    confirm_before_send: bool | None = None
    send_to_client: bool | None = None
    send_to_manager: bool | None = None
    tracked_by_manager: bool | None = None
    default_for_new_clients: bool | None = None
    template_client: str | None = None
    template_manager: str | None = None
    urgent: bool | None = None

    def apply_to(self, base: EventTypeSettings) -> EventTypeSettings:
        changes = self.model_dump(exclude_none=True)
        return base.model_copy(update=changes)


class SmsServiceConfig(_Model):
    """One entry of the directory «Сервисы отправки сообщений»."""

    name: str = Field(min_length=1, max_length=64)
    """The service's name: `notify.sms_service` refers to it, receipts arrive at
    `/api/v1/providers/<name>/status`."""
    kind: SmsKind
    """The provider's API (README, SMS services)."""
    base_url: str | None = None
    """Overrides the provider's public endpoint (a local fake in tests)."""
    login: str | None = None
    """SMSC login."""
    password: str | None = None
    """SMSC password; Twilio auth token."""
    api_key: str | None = None
    """SMSC `apikey`, SMS.ru `api_id`, SMS Aero API key."""
    email: str | None = None
    """SMS Aero account e-mail."""
    account_sid: str | None = None
    """Twilio account SID (the auth token goes in `password` or `token`)."""
    token: str | None = None
    """Bearer token of the generic `http` kind; Twilio auth token; for SMSC, SMS Aero and
    SMS.ru the `?secret=<token>` of the callback URL. Without it (SMS.ru: nor `api_key`),
    the service's delivery callbacks are refused."""
    sender: str | None = None
    """Sender name or number (Twilio: the From number or a Messaging Service SID `MG…`)."""
    callback_url: str | None = None
    """Where the provider should post delivery receipts, for the APIs that take it per
    message (Twilio `StatusCallback`, SMS Aero `callbackUrl`): normally
    `<http.public_url>/api/v1/providers/<name>/status`. The others are set in the provider's
    account (see README, Delivery receipts)."""
    rate_per_second: float = Field(default=10.0, gt=0)
    """At most this many SMS per second, per process."""
    timeout_seconds: float = Field(default=10.0, gt=0)
    """Timeout of one request to the provider."""
    price_per_sms: Decimal | None = Field(default=None, gt=0)
    """The price of one SMS segment in the account's currency, to count the balance in SMS
    when the provider has no price API (SMS Aero, Twilio, `http`) and no send has recorded
    its cost yet."""


class TemplatesSettings(_Model):
    """Where the event types' templates come from, lowest layer first: the packaged
    defaults, this folder, the versions saved through the API."""

    dir: str | None = None
    """A folder whose files override the packaged templates by the same relative name
    (`events/<code>.client.txt.j2`, `events/<code>.client_telegram.html.j2`, …)."""

    @field_validator("dir")
    @classmethod
    def _existing_folder(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_dir():
            raise ValueError(f"{value!r} is not a folder")
        return value

    @property
    def folder(self) -> Path | None:
        return Path(self.dir) if self.dir is not None else None


class SmtpSettings(_Model):
    """E-mail for alerts (low balance, balance unreadable)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    host: str | None = None
    """SMTP server for alert e-mails; unset: no e-mail (alerts go to Telegram)."""
    port: int = Field(default=25, ge=1, le=65535)
    """SMTP port (25, 587 with STARTTLS, 465 with implicit TLS)."""
    from_: str = Field(default="vestnik@localhost", alias="from")
    """Sender address of alert e-mails."""
    username: str | None = None
    """SMTP login; unset: no AUTH."""
    password: str | None = None
    """SMTP password (with `username`)."""
    starttls: bool = False
    """Upgrade the connection with STARTTLS (usually port 587)."""
    tls: bool = False
    """Implicit TLS from the first byte (usually port 465); wins over `starttls`."""
    timeout_seconds: float = Field(default=30.0, gt=0)
    """Timeout of one SMTP conversation."""


class SchedulerSettings(_Model):
    """The periodic jobs. Each job runs once per time slot of its interval across all
    replicas (slot = floor(now / interval) * interval, UTC), whichever replica claims it."""

    enabled: bool = True
    """Run the periodic jobs in this process (all replicas may: one claims each slot)."""
    balance_check_seconds: int = Field(default=600, ge=10, le=86400)
    """How often the SMS balance of the provider in use is read (job `balance`)."""
    receipt_poll_seconds: int = Field(default=300, ge=10, le=86400)
    """How often providers with a status endpoint are asked about sent SMS (`receipts`)."""
    retention_days: int = Field(default=365, ge=1)
    """Journal rows (notifications with their history, events), balance checks and old
    e-mails older than this are deleted (job `retention`)."""
    confirmation_expiry_hours: int = Field(default=72, ge=1)
    """A notification still `awaiting_confirmation` after this long is `cancelled`."""
    balance_failures_before_alert: int = Field(default=3, ge=1, le=1000)
    """This many unreadable balance checks in a row raise one «balance unreadable» alert."""
    email_retry_seconds: int = Field(default=60, ge=10, le=86400)
    """How often e-mails left in the outbox (SMTP was down) are tried again (`email`)."""
    email_max_age_hours: int = Field(default=72, ge=1)
    """An alert e-mail the SMTP server has not taken within this long is given up on."""
    housekeeping_seconds: int = Field(default=3600, ge=10, le=86400)
    """How often retention runs (job `retention`)."""
    confirmation_check_seconds: int = Field(default=300, ge=10, le=86400)
    """How often stale confirmations are looked for (job `expire_confirmations`)."""
    telegram_updates_keep_days: int = Field(default=3, ge=1)
    """Handled Telegram update ids (kept against Telegram's redeliveries) are pruned after
    this long."""
    job_runs_keep_days: int = Field(default=7, ge=2)
    """The scheduler's own slot claims are pruned after this long."""
    retention_batch_rows: int = Field(default=500, ge=10, le=100_000)
    """Rows deleted per transaction by retention (small, so a shutdown loses little)."""


class DeliverySettings(_Model):
    """Live delivery: workers, retries, rate limits (README, Delivery)."""

    max_attempts: int = Field(default=8, ge=1, le=100)
    """Tries per notification before it is `failed`."""
    max_age_seconds: int = Field(default=1800, ge=1)
    """A notification still undelivered this long after queueing is `failed`."""
    telegram_per_second: float = Field(default=30.0, gt=0)
    """Telegram messages per second, per process (Telegram allows 30 per bot: divide by the
    number of replicas)."""
    telegram_per_chat_per_second: float = Field(default=1.0, gt=0)
    """Telegram messages per second to one chat, per process."""
    retry_base_seconds: float = Field(default=2.0, gt=0)
    """The first retry waits about this long; each next one twice as long (with jitter)."""
    retry_cap_seconds: float = Field(default=300.0, gt=0)
    """The longest wait between two tries."""
    workers: int = Field(default=8, ge=1, le=256)
    """How many notifications one process delivers at once, per lane (Telegram, SMS)."""
    lease_seconds: int = Field(default=60, ge=5)
    """How long a worker holds a claimed notification; when it expires (the worker died)
    another worker takes it."""
    poll_seconds: float = Field(default=5.0, gt=0)
    """How often idle workers look for due notifications (fallback to wake-ups)."""
    shutdown_grace_seconds: float = Field(default=8.0, ge=0)
    """At stop, how long in-flight deliveries may finish before they are released."""


class SmsTestSettings(_Model):
    """The test SMS (`/testsms` in the bot, `POST /api/v1/test-sms`): who pays for it is the
    shop, so where it may go and how many a day are bounded (against SMS pumping)."""

    countries: list[str] = Field(default_factory=lambda: ["RU", "KZ", "BY"])
    """Region codes (ISO 3166-1 alpha-2, as `phonenumbers` names them) a test SMS may be sent
    to; the number's own region decides (+7 7xx is KZ)."""
    daily_limit: int = Field(default=10, ge=0, le=10_000)
    """Test SMS per day, all senders together (bot and admin API), counted in the journal
    since 00:00 UTC; 0 turns the test SMS off."""

    @field_validator("countries")
    @classmethod
    def _known_regions(cls, value: list[str]) -> list[str]:
        codes = [code.strip().upper() for code in value]
        if not codes:
            raise ValueError("name at least one region (test SMS off: daily_limit = 0)")
        unknown = [code for code in codes if code not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"unknown region code(s): {', '.join(unknown)}; e.g. RU, KZ, BY")
        return list(dict.fromkeys(codes))


class ErpSettings(_Model):
    """Buttons back to the ERP (docs/INTERFACE.md): an event's `actions` become inline buttons
    under the client's Telegram message; a press is POSTed to `callback_url`, signed."""

    callback_url: str | None = None
    """Where a press is POSTed (`{"event_id", "action", "client_id", "document",
    "pressed_at"}`, header `X-Vestnik-Signature`); unset: events with `actions` are refused
    with 422."""
    callback_secret: str | None = None
    """HMAC-SHA256 secret of the presses' `X-Vestnik-Signature` (at least 16 characters;
    required with `callback_url`); it also signs the buttons' callback data."""
    retry_base_seconds: float = Field(default=5.0, gt=0)
    """The first retry of a press the ERP did not take waits this long; each next one twice
    as long."""
    retry_cap_seconds: float = Field(default=600.0, gt=0)
    """The longest wait between two tries of a press (it is tried until the ERP answers
    2xx)."""
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """Timeout of one POST to `callback_url`."""
    poll_seconds: float = Field(default=5.0, gt=0, le=3600)
    """How often the press outbox is looked at for due retries (a press wakes it at
    once)."""

    @field_validator("callback_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("callback_secret")
    @classmethod
    def _long_secret(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if len(value) < 16:
            raise ValueError(
                f"must be at least 16 characters long (it has {len(value)}); "
                "generate one with `openssl rand -hex 32`"
            )
        return value

    @model_validator(mode="after")
    def _secret_with_url(self) -> ErpSettings:
        if self.callback_url and not self.callback_secret:
            raise ValueError(
                "erp.callback_url needs erp.callback_secret (VESTNIK_ERP__CALLBACK_SECRET): "
                "the ERP verifies each press by it"
            )
        return self

    @property
    def configured(self) -> bool:
        return bool(self.callback_url and self.callback_secret)
