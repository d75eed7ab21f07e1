"""Effective settings: the config file overlaid with what the settings API stored.

Several replicas share the database, so each process re-reads the stored overrides at most
every `ttl` seconds; a change made through this process is visible to it at once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.catalogue import EVENT_TYPES
from dispatch.config import EventTypeOverride, EventTypeSettings, NotifySettings
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

    def event_type(self, code: str) -> EventTypeSettings:
        return self.event_types[code]


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
        sms_service_names: Sequence[str],
        has_webhook_secret: bool,
        ttl_seconds: float = 2.0,
    ) -> None:
        self._file_notify = notify
        self._file_event_types = dict(event_types)
        self._sms_service_names = tuple(sms_service_names)
        self._has_webhook_secret = has_webhook_secret
        self._ttl = ttl_seconds
        self._cached: EffectiveConfig | None = None
        self._cached_at = 0.0

    def invalidate(self) -> None:
        self._cached = None

    async def current(self, session: AsyncSession) -> EffectiveConfig:
        now = time.monotonic()
        if self._cached is None or now - self._cached_at > self._ttl:
            stored = await settings_store.load_all(session)
            self._cached = self._build(stored)
            self._cached_at = now
        return self._cached

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
        return EffectiveConfig(notify=notify, event_types=MappingProxyType(types))

    def _merge_notify(
        self, stored: Mapping[str, Any], changes: Mapping[str, Any]
    ) -> NotifySettings:
        merged = {**self._file_notify.model_dump(), **stored, **changes}
        return NotifySettings.model_validate(merged)

    def _check(self, notify: NotifySettings) -> None:
        if notify.sms_service is not None and notify.sms_service not in self._sms_service_names:
            known = ", ".join(self._sms_service_names) or "none configured"
            raise SettingsRejected(
                f"sms_service {notify.sms_service!r} is not in [[sms_services]] ({known})"
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
        self._check(notify)
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
