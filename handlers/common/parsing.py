"""An admin request's JSON object body, and its validation against a pydantic model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from handlers.common.body import ADMIN_MAX_BODY_BYTES, read_body
from handlers.common.errors import ApiError, validation_error
from handlers.common.jsonbody import parse_json
from handlers.common.keys import HTTP_CONTEXT

M = TypeVar("M", bound=BaseModel)


async def json_body(request: web.Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """The body as a JSON object (400 when not JSON, 422 when not an object)."""
    raw = await read_body(
        request, ADMIN_MAX_BODY_BYTES, timeout=request.app[HTTP_CONTEXT].body_timeout_seconds
    )
    if not raw.strip() and empty_ok:
        return {}
    document = parse_json(raw)
    if not isinstance(document, dict):
        raise ApiError(422, "validation_error", "the body must be a JSON object")
    return document


def validated(model: type[M], data: Mapping[str, Any], message: str) -> M:
    """`data` as `model`; a 422 `validation_error` with pydantic's details (no input)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, message) from None
