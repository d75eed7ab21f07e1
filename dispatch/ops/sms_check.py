"""Does an SMS service work? Its balance read now, and whether its delivery callbacks can
be authenticated: for `vestnik check-config` and `POST /api/v1/sms-services/{name}/check`.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from dispatch.delivery.channels.outcome import ErrorKind
from dispatch.delivery.channels.sms.base import Balance, ProviderError, SmsProvider
from dispatch.delivery.channels.sms.registry import callbacks_refused


def describe_error(exc: BaseException) -> str:
    """An exception as one line: its class and its text."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True, slots=True)
class ServiceCheck:
    service: str
    kind: str
    balance: Balance | None
    """None when the balance could not be read."""
    error: str | None
    """Why the balance could not be read, one line."""
    error_kind: ErrorKind | None
    callbacks_refused: str | None
    """None when delivery callbacks can be authenticated; else what to configure."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self, remark: str = "") -> str:
        """`http: balance 812.40 RUB`, or the failure, then `remark` and the callbacks'
        note."""
        if self.balance is not None:
            currency = f" {self.balance.currency}" if self.balance.currency else ""
            detail = f"{self.kind}: balance {self.balance.amount}{currency}"
        else:
            detail = f"{self.kind}: {self.error}"
        note = f"; {self.callbacks_refused}" if self.callbacks_refused else ""
        return detail + remark + note


async def check_service(provider: SmsProvider, *, public_url: str | None) -> ServiceCheck:
    """Read the balance of `provider` now; never raises for the provider's failures."""
    config = provider.config
    refused = callbacks_refused(config, public_url)
    try:
        balance = await provider.balance()
    except ProviderError as exc:
        error, kind = f"{exc} ({exc.error.value})", exc.error
    except (aiohttp.ClientError, OSError) as exc:
        error, kind = f"cannot reach the provider: {describe_error(exc)}", ErrorKind.TRANSIENT
    else:
        return ServiceCheck(config.name, config.kind, balance, None, None, refused)
    return ServiceCheck(config.name, config.kind, None, error, kind, refused)
