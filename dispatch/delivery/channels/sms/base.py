"""The interface every SMS provider adapter implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

import aiohttp

from dispatch.config import SmsServiceConfig
from dispatch.delivery.channels.outcome import ErrorKind, Outcome
from dispatch.errors import DispatchError

PRICE_PROBE_PHONE = "+79031234567"
"""The number a price request asks about (nothing is sent to it): a Russian mobile, since
a segment's price depends on the operator and the shop's clients are Russian mobiles."""
PRICE_PROBE_TEXT = "Тест"
"""The text a price request asks about: one segment."""


@dataclass(frozen=True, slots=True)
class SmsMessage:
    notification_id: int
    """Ours; passed to the provider as its client-side id where the API has one."""
    phone: str
    """E.164, with the leading +."""
    text: str
    sender: str | None = None


@dataclass(frozen=True, slots=True)
class Balance:
    amount: Decimal
    currency: str | None = None


class DeliveryState(StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"
    PENDING = "pending"
    """Still on its way (queued, passed to the operator, …): no change to record."""
    UNKNOWN = "unknown"
    """The provider does not know the id."""


@dataclass(frozen=True, slots=True)
class Receipt:
    provider_message_id: str
    state: DeliveryState
    reason: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """A provider's delivery-receipt callback, framework-neutral."""

    method: str
    url: str
    """The full URL as the provider called it (Twilio signs it)."""
    headers: Mapping[str, str]
    query: Mapping[str, str]
    form: Mapping[str, Sequence[str]]
    """Form fields (urlencoded or multipart), each with all its values."""
    body: bytes


@dataclass(frozen=True, slots=True)
class CallbackResult:
    receipts: Sequence[Receipt] = field(default_factory=tuple)
    reply_body: str = "OK"
    """What the provider expects back (SMS.ru insists on the body `100`)."""
    reply_content_type: str = "text/plain"


class ProviderError(DispatchError):
    """A balance or status request failed; `error` says what kind of failure."""

    def __init__(self, message: str, error: ErrorKind = ErrorKind.TRANSIENT) -> None:
        super().__init__(message)
        self.error = error


class CallbackRejected(DispatchError):
    """A callback that fails the provider's authentication (signature, hash, secret), or
    one for a service that has nothing to authenticate it with: never accepted."""


class CallbackMalformed(DispatchError):
    """An authenticated callback whose body cannot be read (not JSON, nested too deeply)."""


class SmsProvider(ABC):
    """One configured SMS service of the directory «Сервисы отправки сообщений»."""

    kind: str = ""
    supports_status: bool = False
    """Whether `fetch_statuses` works (the provider has a status endpoint)."""
    message_ids_are_ours: bool = False
    """The provider's message id is our notification id (SMSC): a receipt for an id we
    have not issued yet cannot be genuine, so it is never parked."""

    def __init__(self, config: SmsServiceConfig, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.session = session

    @property
    def name(self) -> str:
        return self.config.name

    @abstractmethod
    async def send(self, message: SmsMessage) -> Outcome:
        """Send one SMS; never raises (timeouts, HTTP and API errors become outcomes)."""

    @abstractmethod
    async def balance(self) -> Balance:
        """The account balance; raises ProviderError."""

    async def price(self) -> Decimal | None:
        """The price of one SMS segment from the provider's price API, sending nothing;
        None when the API has no price call (the caller then falls back on recorded costs
        or the service's `price_per_sms`). Raises ProviderError."""
        return None

    async def fetch_statuses(self, messages: Sequence[tuple[str, str]]) -> list[Receipt]:
        """Delivery states of (provider_message_id, phone) pairs; raises ProviderError."""
        raise ProviderError(f"{self.kind} has no status endpoint", ErrorKind.CONFIG)

    @classmethod
    def callback_authenticator(cls, config: SmsServiceConfig) -> str | None:
        """How this service's delivery callbacks are authenticated, or None when it has
        nothing to authenticate them with: its callback route then refuses them all."""
        return None

    @classmethod
    def callback_setup(cls, config: SmsServiceConfig, status_url: str) -> str:
        """What to configure so that callbacks to `status_url` are accepted (for
        `check-config` and the `serve` banner); only asked when there is no authenticator."""
        return f"set token, then register {status_url}?secret=<token> at the provider"

    def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        """Receipts from a delivery callback; raises CallbackRejected when not authentic,
        CallbackMalformed when authentic but unreadable."""
        raise CallbackRejected(f"{self.kind} delivery callbacks are not supported")
