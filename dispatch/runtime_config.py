"""Effective settings: the config file overlaid with what the settings API stored.

Several replicas share the database, so each process re-reads the stored overrides at most
every `ttl` seconds; a change made through this process is visible to it at once. The SMS
services directory is one of them (`dispatch/delivery/channels/sms/directory.py`): its
listeners (the live providers, the log redaction) hear of every change when it is read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.catalogue import EVENT_TYPES
from dispatch.config import (
    EventTypeOverride,
    EventTypeSettings,
    NotifySettings,
    SmsServiceConfig,
)
from dispatch.delivery.channels.sms import directory
from dispatch.delivery.channels.sms.directory import DirectoryEntry, ServiceInUse
from dispatch.errors import DispatchError
from storage.ops import settings_store

NOTIFY_KEY = "notify"
EVENT_TYPE_KEY_PREFIX = "event_type:"


class SettingsRejected(DispatchError, ValueError):
    """A settings change that would leave the service misconfigured."""


@dataclass(frozen=True, slots=True)
class EffectiveConfig:
    notify: NotifySettings
    event_types: Mapping[str, EventTypeSettings]
    sms_directory: tuple[DirectoryEntry, ...] = ()
    """The SMS services: the file's `[[sms_services]]` overlaid with the admin API's."""

    def event_type(self, code: str) -> EventTypeSettings:
        return self.event_types[code]

    @property
    def sms_services(self) -> tuple[SmsServiceConfig, ...]:
        """The services as this process sends with them (its share of each send rate)."""
        return tuple(entry.runtime for entry in self.sms_directory)


def catalogue_settings(code: str) -> EventTypeSettings:
    defaults = EVENT_TYPES[code].defaults
    return EventTypeSettings(
        confirm_before_send=defaults.confirm_before_send,
        send_to_client=defaults.send_to_client,
        send_to_manager=defaults.send_to_manager,
        tracked_by_manager=defaults.tracked_by_manager,
        default_for_new_clients=defaults.default_for_new_clients,
    )


class RuntimeConfig:
    """Builds `EffectiveConfig` from the file settings and the stored overrides."""

    def __init__(
        self,
        *,
        notify: NotifySettings,
        event_types: Mapping[str, EventTypeOverride],
        has_webhook_secret: bool,
        sms_services: Sequence[SmsServiceConfig] = (),
        sms_service_names: Sequence[str] = (),
        rate_share: float = 1.0,
        ttl_seconds: float = 2.0,
    ) -> None:
        """`sms_services`: the config file's directory; `sms_service_names`: names known
        to exist without their entries (a caller that only reads `notify`).
        `rate_share`: the part of a stored service's send rate this process may use."""
        self._file_notify = notify
        self._file_event_types = dict(event_types)
        self._file_sms_services = tuple(sms_services)
        self._sms_service_names = tuple(sms_service_names)
        self._rate_share = rate_share
        self._has_webhook_secret = has_webhook_secret
        self._ttl = ttl_seconds
        self._cached: EffectiveConfig | None = None
        self._cached_at = 0.0
        self._sms_listeners: list[Callable[[tuple[SmsServiceConfig, ...]], None]] = []
        self._secret_listeners: list[Callable[[list[str]], None]] = []
        self._pushed: tuple[SmsServiceConfig, ...] | None = None

    def on_sms_services(self, listener: Callable[[tuple[SmsServiceConfig, ...]], None]) -> None:
        """Call `listener` with the services whenever a rebuild finds them changed (and now,
        when they are known already): how the providers follow the directory."""
        self._sms_listeners.append(listener)
        if self._pushed is not None:
            listener(self._pushed)

    def off_sms_services(self, listener: Callable[[tuple[SmsServiceConfig, ...]], None]) -> None:
        if listener in self._sms_listeners:
            self._sms_listeners.remove(listener)

    def on_secrets(self, listener: Callable[[list[str]], None]) -> None:
        """Call `listener` with the directory's secrets as they become known, before any
        of them is written (the log redaction must know them before a driver logs them)."""
        self._secret_listeners.append(listener)
        if self._pushed is not None:
            listener(directory.secret_values(self._pushed))

    def _learn_secrets(self, services: Sequence[SmsServiceConfig]) -> None:
        secrets = directory.secret_values(services)
        if secrets:
            for listener in list(self._secret_listeners):
                listener(secrets)

    def invalidate(self) -> None:
        self._cached = None

    async def current(self, session: AsyncSession) -> EffectiveConfig:
        now = time.monotonic()
        if self._cached is None or now - self._cached_at > self._ttl:
            stored = await settings_store.load_all(session)
            self._cached = self._build(stored)
            self._cached_at = now
            self._push(self._cached.sms_services)
        return self._cached

    def _push(self, services: tuple[SmsServiceConfig, ...]) -> None:
        if services == self._pushed:
            return
        self._pushed = services
        self._learn_secrets(services)
        for listener in list(self._sms_listeners):
            listener(services)

    def _directory(self, stored: Mapping[str, Mapping[str, Any]]) -> tuple[DirectoryEntry, ...]:
        return directory.merge(self._file_sms_services, stored, rate_share=self._rate_share)

    def _build(self, stored: Mapping[str, Mapping[str, Any]]) -> EffectiveConfig:
        notify = self._merge_notify(stored.get(NOTIFY_KEY, {}), {})
        types: dict[str, EventTypeSettings] = {}
        for code in EVENT_TYPES:
            settings = catalogue_settings(code)
            if code in self._file_event_types:
                settings = self._file_event_types[code].apply_to(settings)
            override = stored.get(EVENT_TYPE_KEY_PREFIX + code)
            if override:
                settings = settings.model_copy(update=dict(override))
            types[code] = settings
        return EffectiveConfig(
            notify=notify,
            event_types=MappingProxyType(types),
            sms_directory=self._directory(stored),
        )

    def _merge_notify(
        self, stored: Mapping[str, Any], changes: Mapping[str, Any]
    ) -> NotifySettings:
        merged = {**self._file_notify.model_dump(), **stored, **changes}
        return NotifySettings.model_validate(merged)

    def _check(self, notify: NotifySettings, entries: Sequence[DirectoryEntry]) -> None:
        names = [entry.config.name for entry in entries]
        names += [name for name in self._sms_service_names if name not in names]
        if notify.sms_service is not None and notify.sms_service not in names:
            known = ", ".join(names) or "none configured"
            raise SettingsRejected(
                f"sms_service {notify.sms_service!r} is not a service of the directory "
                f"({known}; /api/v1/sms-services)"
            )
        if notify.mode == "live" and not self._has_webhook_secret:
            raise SettingsRejected(
                "mode 'live' needs webhook.secret (VESTNIK_WEBHOOK__SECRET) to be configured"
            )

    async def update_notify(
        self, session: AsyncSession, changes: Mapping[str, Any], *, actor: str
    ) -> NotifySettings:
        """Validate and store a partial change of `notify`; raises ValidationError or
        SettingsRejected without storing anything."""
        stored = await settings_store.load_all(session)
        current_override = dict(stored.get(NOTIFY_KEY, {}))
        notify = self._merge_notify(current_override, changes)
        self._check(notify, self._directory(stored))
        # Store the JSON form of only what differs from the file, so the file stays the
        # source of everything nobody changed through the API.
        dumped = notify.model_dump(mode="json")
        file_dumped = self._file_notify.model_dump(mode="json")
        override = {key: value for key, value in dumped.items() if file_dumped[key] != value}
        await settings_store.save(session, NOTIFY_KEY, override, actor=actor)
        self.invalidate()
        return notify

    async def update_event_type(
        self, session: AsyncSession, code: str, changes: Mapping[str, Any], *, actor: str
    ) -> EventTypeSettings:
        stored = await settings_store.load_all(session)
        key = EVENT_TYPE_KEY_PREFIX + code
        current = self._build(stored).event_type(code)
        updated = EventTypeSettings.model_validate({**current.model_dump(), **changes})
        override = {
            **stored.get(key, {}),
            **EventTypeOverride.model_validate(dict(changes)).model_dump(exclude_unset=True),
        }
        await settings_store.save(session, key, override, actor=actor)
        self.invalidate()
        return updated

    async def fresh(self, session: AsyncSession) -> EffectiveConfig:
        """`current`, read from the database now whatever the cache holds."""
        self.invalidate()
        return await self.current(session)

    async def put_sms_service(
        self, session: AsyncSession, name: str, body: Mapping[str, Any], *, actor: str
    ) -> tuple[DirectoryEntry, bool]:
        """Create or replace the service `name` with `body` (secrets it leaves out are
        kept); returns the entry and whether it is new. Raises ValidationError or
        ServiceRejected without storing anything."""
        stored = await settings_store.load_all(session)
        current = directory.find(self._directory(stored), name)
        config = directory.with_kept_secrets(
            name, body, current.config if current is not None else None
        )
        self._learn_secrets([config])
        key, row = (
            directory.service_key(name),
            config.model_dump(mode="json", exclude_defaults=True),
        )
        await settings_store.save(session, key, row, actor=actor)
        self.invalidate()
        entry = directory.find(self._directory({**stored, key: row}), name)
        assert entry is not None  # validated just above
        return entry, current is None

    async def delete_sms_service(self, session: AsyncSession, name: str, *, actor: str) -> bool:
        """Remove the service `name`; False when there is none. Raises ServiceInUse when the
        notify settings name it, or need an SMS route and it is the last service."""
        stored = await settings_store.load_all(session)
        entries = self._directory(stored)
        if directory.find(entries, name) is None:
            return False
        notify = self._merge_notify(stored.get(NOTIFY_KEY, {}), {})
        if notify.sms_service == name:
            raise ServiceInUse(
                f"{name!r} is notify.sms_service: first set notify.sms_service to another "
                "service (PUT /api/v1/settings)"
            )
        needs = "notify.service = sms" if notify.service == "sms" else "notify.reserve = sms"
        if len(entries) == 1 and (notify.service == "sms" or notify.reserve == "sms"):
            raise ServiceInUse(
                f"{name!r} is the last SMS service and {needs} needs one: first add another "
                "service, or set notify.service = telegram with notify.reserve = none "
                "(PUT /api/v1/settings)"
            )
        key = directory.service_key(name)
        if any(config.name == name for config in self._file_sms_services):
            await settings_store.save(session, key, dict(directory.REMOVED), actor=actor)
        else:
            await settings_store.delete(session, key)
        self.invalidate()
        return True
