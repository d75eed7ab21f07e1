"""The directory «Сервисы отправки сообщений» as it is at run time.

Two layers, merged by name. The lower one is the config file's `[[sms_services]]`; the
upper one is what the admin API stored in the settings store, one row per service
(`sms_service:<name>`): the whole entry as the API last wrote it, or `{"removed": true}`
for a file entry the API deleted. So the file is the directory's initial content, a
change made through the API wins on every replica, and an entry nobody touched through
the API still follows the file after a restart.

Secrets (`SECRET_FIELDS`) are write-only: answers show `***` for a secret that is set, and
a change that leaves a secret out (or sends `***`) keeps the one in effect.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import ValidationError

from dispatch.config import SmsServiceConfig
from dispatch.errors import DispatchError

logger = logging.getLogger(__name__)

SERVICE_KEY_PREFIX = "sms_service:"
"""The settings-store key of one service: the prefix and its name."""
REMOVED = {"removed": True}
"""The stored value of a file entry deleted through the API."""
SECRET_FIELDS = ("password", "api_key", "token")
"""The fields of `SmsServiceConfig` that are never answered or logged."""
MASK = "***"

Origin = Literal["file", "stored"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One field of an entry that cannot work, as the API reports it (`loc`, `message`)."""

    field: str
    message: str
    type: str = "missing"

    def detail(self) -> dict[str, Any]:
        return {"loc": [self.field], "message": self.message, "type": self.type}


class ServiceRejected(DispatchError, ValueError):
    """An entry the directory does not take; `problems` name the fields."""

    def __init__(self, message: str, problems: Sequence[Problem]) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


class ServiceInUse(DispatchError):
    """Removing the service would leave the notify settings without the SMS route they
    name; the message says what to change first."""


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    config: SmsServiceConfig
    """As configured (in the file, or as the API stored it)."""
    origin: Origin
    """`file`: from the config file, unchanged; `stored`: created or changed through the API."""
    runtime: SmsServiceConfig
    """What this process sends with: `config` with its share of the send rate."""


def service_key(name: str) -> str:
    return SERVICE_KEY_PREFIX + name


@functools.cache
def _warn_unusable(name: str, error: str) -> None:
    # Once per problem: the directory is rebuilt every few seconds.
    logger.warning("stored SMS service %r is ignored, it no longer validates: %s", name, error)


def merge(
    file_services: Iterable[SmsServiceConfig],
    stored: Mapping[str, Mapping[str, Any]],
    *,
    rate_share: float = 1.0,
) -> tuple[DirectoryEntry, ...]:
    """The directory: the file's entries in their order, each replaced or removed by its
    stored row, then the entries only the API created, by name.

    `rate_share`: the part of a stored entry's `rate_per_second` this process may use (the
    file's entries come already shared out among the processes of `serve --workers`)."""
    rows = {
        key.removeprefix(SERVICE_KEY_PREFIX): value
        for key, value in stored.items()
        if key.startswith(SERVICE_KEY_PREFIX)
    }
    entries: list[DirectoryEntry] = []
    file_names = set()
    for config in file_services:
        file_names.add(config.name)
        row = rows.get(config.name)
        if row is None:
            entries.append(DirectoryEntry(config, "file", config))
            continue
        entry = _stored_entry(config.name, row, rate_share)
        if entry is not None:
            entries.append(entry)
    for name in sorted(set(rows) - file_names):
        entry = _stored_entry(name, rows[name], rate_share)
        if entry is not None:
            entries.append(entry)
    return tuple(entries)


def _stored_entry(name: str, row: Mapping[str, Any], rate_share: float) -> DirectoryEntry | None:
    if row.get("removed"):
        return None
    try:
        config = SmsServiceConfig.model_validate({**row, "name": name})
    except ValidationError as exc:
        _warn_unusable(name, "; ".join(str(error["msg"]) for error in exc.errors()))
        return None
    runtime = config
    if rate_share != 1.0:
        runtime = config.model_copy(
            update={"rate_per_second": config.rate_per_second * rate_share}
        )
    return DirectoryEntry(config, "stored", runtime)


def find(entries: Iterable[DirectoryEntry], name: str) -> DirectoryEntry | None:
    return next((entry for entry in entries if entry.config.name == name), None)


def in_use_name(entries: Sequence[DirectoryEntry], sms_service: str | None) -> str | None:
    """The service notifications go by: `notify.sms_service`, else the first listed."""
    if sms_service is not None:
        return sms_service if find(entries, sms_service) is not None else None
    return entries[0].config.name if entries else None


def with_kept_secrets(
    name: str, body: Mapping[str, Any], current: SmsServiceConfig | None
) -> SmsServiceConfig:
    """`body` (a new entry or a whole replacement of `current`) as a validated entry named
    `name`: a secret it leaves out or sends as `***` keeps `current`'s value (`null` clears
    it). Raises pydantic's ValidationError, or ServiceRejected naming the fields."""
    if "name" in body and body["name"] != name:
        problem = Problem("name", f"must be {name!r}, the name in the path", "value_error")
        raise ServiceRejected("the body names another service than the path", [problem])
    values = dict(body)
    for field in SECRET_FIELDS:
        if field not in values or values[field] == MASK:
            values[field] = getattr(current, field) if current is not None else None
    config = SmsServiceConfig.model_validate({**values, "name": name})
    problems = credential_problems(config)
    if problems:
        raise ServiceRejected(
            f"the {config.kind} service {name!r} cannot work: "
            + "; ".join(f"{p.field} {p.message}" for p in problems),
            problems,
        )
    return config


def credential_problems(config: SmsServiceConfig) -> list[Problem]:
    """What the entry lacks to send with its kind's API, and a `base_url` that is not an
    http(s) URL. The config file is not held to this (an incomplete entry there is reported
    by `check-config` and its sends fail as CONFIG), the admin API is."""
    problems: list[Problem] = []
    if config.base_url is not None:
        parts = urlsplit(config.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(
                Problem("base_url", "must be an http:// or https:// URL", "url_scheme")
            )
    kind = config.kind
    if kind == "http" and config.base_url is None:
        problems.append(Problem("base_url", "is required for kind http (the gateway's URL)"))
    elif kind == "smsc":
        if config.login and not config.password:
            problems.append(Problem("password", "is required with login for kind smsc"))
        elif not config.login and not config.api_key:
            problems.append(
                Problem("login", "and password (or api_key) are required for kind smsc")
            )
    elif kind == "smsru" and not config.api_key:
        problems.append(Problem("api_key", "is required for kind smsru (its api_id)"))
    elif kind == "smsaero":
        problems += [
            Problem(field, "is required for kind smsaero")
            for field in ("email", "api_key")
            if not getattr(config, field)
        ]
    elif kind == "twilio":
        if not config.account_sid:
            problems.append(Problem("account_sid", "is required for kind twilio"))
        if not (config.token or config.password):
            problems.append(Problem("token", "(the auth token) is required for kind twilio"))
        if not config.sender:
            problems.append(Problem("sender", "(the From number) is required for kind twilio"))
    return problems


def masked(config: SmsServiceConfig) -> dict[str, Any]:
    """The entry as the API answers it: every secret that is set shown as `***`."""
    values = config.model_dump()
    for field in SECRET_FIELDS:
        if values.get(field):
            values[field] = MASK
    return values


def secret_values(configs: Iterable[SmsServiceConfig]) -> list[str]:
    """Every secret of `configs`, for the log redaction."""
    found = (getattr(config, field) for config in configs for field in SECRET_FIELDS)
    return [value for value in found if value]
