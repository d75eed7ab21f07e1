"""The ERP event body (CONTRACT §2) as pydantic models."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from pydantic.functional_validators import AfterValidator

from dispatch.catalogue import EVENT_TYPES
from dispatch.intake.quiet_hours import parse_zone
from dispatch.phones import InvalidPhone, normalise_phone

PHONE_CACHE_SIZE = 8192
"""Distinct phone texts whose normal form is remembered: parsing one with `phonenumbers`
cost about a tenth of an event's Python, and the same clients and managers come back."""


@functools.lru_cache(maxsize=PHONE_CACHE_SIZE)
def _normalised(value: str) -> str:
    # A pure function of the text; a refused number raises and is not cached.
    return normalise_phone(value)


def _phone(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        return _normalised(value)
    except InvalidPhone as exc:
        raise ValueError(str(exc)) from None


Phone = Annotated[str | None, AfterValidator(_phone)]
ExternalId = Annotated[str, Field(min_length=1, max_length=64)]


class ClientIn(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    id: ExternalId
    name: str = Field(min_length=1, max_length=255)
    phone: Phone = None
    manager_id: Annotated[str, Field(max_length=64)] | None = None
    category: Annotated[str, Field(max_length=255)] | None = None
    blocked: bool | None = None
    timezone: Annotated[str, Field(max_length=64)] | None = None
    """The client's own IANA zone: quiet hours count in its local time."""

    @field_validator("timezone")
    @classmethod
    def _iana_zone(cls, value: str | None) -> str | None:
        if value:
            parse_zone(value)
        return value or None


class ManagerIn(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    id: ExternalId
    name: str = Field(min_length=1, max_length=255)
    phone: Phone = None
    email: Annotated[str, Field(max_length=255)] | None = None


MAX_ACTIONS = 3
ACTION_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"


class ActionIn(BaseModel):
    """A button back to the ERP (CONTRACT §9): its `id` comes back in the press."""

    # Like the event itself: the ERP may add keys.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    id: str = Field(pattern=ACTION_ID_PATTERN)
    """A short slug: lower-case letters, digits, `_` and `-`, at most 32."""
    label: str = Field(min_length=1, max_length=64)
    """The button's text in Telegram."""


class EventIn(BaseModel):
    """One ERP event. Unknown top-level keys are ignored so the ERP can add fields."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    event_id: str = Field(min_length=1, max_length=128)
    type: str
    occurred_at: AwareDatetime
    client: ClientIn
    manager: ManagerIn | None = None
    document: dict[str, Any] = Field(default_factory=dict)
    actions: list[ActionIn] = Field(default_factory=list, max_length=MAX_ACTIONS)

    @field_validator("actions")
    @classmethod
    def _distinct_actions(cls, value: list[ActionIn]) -> list[ActionIn]:
        ids = [action.id for action in value]
        if len(set(ids)) != len(ids):
            raise ValueError("each action id may appear once")
        return value

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in EVENT_TYPES:
            raise ValueError(f"unknown event type {value!r}; known: {', '.join(EVENT_TYPES)}")
        return value
