"""Which adapter serves which `kind` of the directory «Сервисы отправки сообщений»."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import aiohttp

from dispatch.config import SmsServiceConfig
from dispatch.delivery.channels.sms.base import SmsProvider
from dispatch.delivery.channels.sms.http import HttpProvider
from dispatch.delivery.channels.sms.smsaero import SmsAeroProvider
from dispatch.delivery.channels.sms.smsc import SmscProvider
from dispatch.delivery.channels.sms.smsru import SmsRuProvider
from dispatch.delivery.channels.sms.twilio import TwilioProvider

PROVIDER_KINDS: Mapping[str, type[SmsProvider]] = MappingProxyType(
    {
        "smsc": SmscProvider,
        "smsru": SmsRuProvider,
        "smsaero": SmsAeroProvider,
        "twilio": TwilioProvider,
        "http": HttpProvider,
    }
)
"""kind → adapter class; its keys are the kinds `SmsServiceConfig.kind` allows."""


def build_provider(config: SmsServiceConfig, session: aiohttp.ClientSession) -> SmsProvider:
    """The adapter for `config.kind`, sending through `session`; ValueError for unknown kinds.

    Missing credentials are not an error here: the adapter reports them as a CONFIG outcome
    (send) or ProviderError (balance, statuses), so one bad entry cannot stop the process.
    """
    try:
        adapter = PROVIDER_KINDS[config.kind]
    except KeyError:
        raise ValueError(f"unknown SMS service kind {config.kind!r}") from None
    return adapter(config, session)


def callback_status_url(config: SmsServiceConfig, public_url: str | None) -> str:
    """Where the provider posts this service's delivery receipts."""
    base = public_url.rstrip("/") if public_url else "<http.public_url>"
    return f"{base}/api/v1/providers/{config.name}/status"


def callbacks_refused(config: SmsServiceConfig, public_url: str | None) -> str | None:
    """None when the service can authenticate its delivery callbacks; otherwise one line
    saying that they are all refused and what to configure (`check-config`, `serve`)."""
    adapter = PROVIDER_KINDS.get(config.kind)
    if adapter is None or adapter.callback_authenticator(config) is not None:
        return None
    setup = adapter.callback_setup(config, callback_status_url(config, public_url))
    return f"delivery callbacks are refused until they can be authenticated: {setup}"
