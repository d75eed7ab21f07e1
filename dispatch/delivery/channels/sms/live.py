"""The SMS providers of the directory as it is now, for everything that sends or asks.

`LiveProviders` is a read-only mapping name → provider. It follows `RuntimeConfig`: each
time the effective directory is rebuilt (at most every few seconds, at once after a change
made through this process) and differs, the providers of changed entries are built anew
and those of unchanged entries are kept, so their rate windows and pauses in the delivery
service carry on. A caller that does not otherwise read the runtime config first calls
`refresh`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import aiohttp

from dispatch.config import SmsServiceConfig
from dispatch.delivery.channels.sms.base import SmsProvider
from dispatch.delivery.channels.sms.registry import build_provider
from dispatch.runtime_config import RuntimeConfig
from storage.database import Database


class LiveProviders(Mapping[str, SmsProvider]):
    """name → provider, in the directory's order, rebuilt when the directory changes."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: RuntimeConfig,
        services: Iterable[SmsServiceConfig] = (),
    ) -> None:
        """`services`: what to start with until the runtime config is first read (the
        config file's entries)."""
        self._session = session
        self._config = config
        self._providers: dict[str, SmsProvider] = {}
        self.sync(services)
        config.on_sms_services(self.sync)

    def sync(self, services: Iterable[SmsServiceConfig]) -> None:
        """Take `services` as the directory: a provider whose entry is unchanged stays."""
        providers: dict[str, SmsProvider] = {}
        for config in services:
            known = self._providers.get(config.name)
            providers[config.name] = (
                known
                if known is not None and known.config == config
                else build_provider(config, self._session)
            )
        # One assignment: a reader in the middle of a send keeps the provider it holds.
        self._providers = providers

    async def refresh(self, db: Database) -> LiveProviders:
        """Follow the directory's changes made elsewhere (by another replica) if the runtime
        config has not looked for them lately; returns self."""
        async with db.sessions() as session:
            await self._config.current(session)
        return self

    def close(self) -> None:
        """Stop following the directory (the HTTP session is closing)."""
        self._config.off_sms_services(self.sync)

    def __getitem__(self, name: str) -> SmsProvider:
        return self._providers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._providers)

    def __len__(self) -> int:
        return len(self._providers)
