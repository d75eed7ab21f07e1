"""The route table's vocabulary: what one operation of the HTTP API is, in a few fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

Schema = dict[str, Any]

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Body:
    """A response (or a request body): a pydantic model as JSON, or a raw schema of
    another media type (Prometheus text, a provider's callback)."""

    description: str
    model: type[BaseModel] | str | None = None
    """A response model, or the name of a derived schema in the components."""
    media: Mapping[str, Schema] = field(default_factory=dict)
    """Media type → schema, for bodies that are not one JSON model."""
    headers: Mapping[str, Schema] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Param:
    """A path or header parameter (query parameters come from a query model)."""

    name: str
    where: Literal["path", "header"]
    description: str
    schema: Schema = field(default_factory=lambda: {"type": "string"})
    required: bool = True


@dataclass(frozen=True, slots=True)
class Route:
    """One operation: method and path as served, what it takes and what it answers.

    `answers` maps a status to a `Body` or to the name of a shared error response;
    admin routes get the answers every admin route can give (401, 403, 421, 503; 400,
    408 and 415 with a body) without listing them, plus `errors` (404, 409, 422).
    """

    method: Literal["get", "put", "post", "delete"]
    path: str
    operation_id: str
    summary: str
    tag: str
    answers: Mapping[str, Body | str]
    request: type[BaseModel] | str | None = None
    """The JSON body: a request model, or the name of a derived schema in the components."""
    request_required: bool = True
    request_media: Mapping[str, Schema] = field(default_factory=dict)
    """Media type → schema, for a body that is not one JSON model."""
    query: type[BaseModel] | None = None
    """The model the view validates the query string with: each field is a parameter."""
    params: tuple[Param, ...] = ()
    admin: bool = True
    errors: tuple[Literal["404", "409", "422"], ...] = ()
