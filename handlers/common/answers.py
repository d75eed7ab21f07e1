"""Response models: what a view answers is one of these, dumped to JSON.

The OpenAPI document (`handlers/http/openapi/`) is generated from the same models, so an
answer and its description cannot drift apart: a field the view adds or drops fails the
model's validation (`extra="forbid"`) instead of going out undocumented.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema


def _iso(value: datetime) -> str:
    # `isoformat()` as the API always wrote it (`+00:00`, not pydantic's `Z`).
    return value.isoformat()


def json_response(data: Any, status: int = 200) -> web.Response:
    """`data` as a JSON answer in UTF-8: Cyrillic stays readable in curl and logs, where
    `web.json_response` would write every letter as a `\\uXXXX` escape. Every JSON answer of
    the API goes through here."""
    # A lone surrogate can only come from a `\\udXXX` escape a client sent; UTF-8 cannot
    # carry it, so it goes back as that same JSON escape (it only ever sits in a string).
    body = json.dumps(data, ensure_ascii=False).encode("utf-8", "backslashreplace")
    return web.Response(body=body, status=status, content_type="application/json", charset="utf-8")


IsoTime = Annotated[
    datetime,
    PlainSerializer(_iso, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A time in an answer: ISO 8601 with its UTC offset."""


class Answer(BaseModel):
    """Base of the response models: strict about fields, readable from ORM rows."""

    model_config = ConfigDict(
        extra="forbid",
        from_attributes=True,
        json_schema_serialization_defaults_required=True,
        use_attribute_docstrings=True,
    )

    def response(self, status: int = 200) -> web.Response:
        return json_response(self.model_dump(mode="json"), status=status)


def answer(model: type[Answer], data: Any, status: int = 200) -> web.Response:
    """`data` (a mapping or an object with the fields) answered as `model`."""
    return model.model_validate(data).response(status)


class ErrorBody(Answer):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    """Stable, machine-readable (docs/INTERFACE.md lists them)."""
    message: str
    """For people; may change."""
    details: list[Any]
    """Per-field problems of a `validation_error` (`loc`, `message`, `type`), or more."""


class Error(Answer):
    """The contract's error body, the same on every error answer."""

    error: ErrorBody
