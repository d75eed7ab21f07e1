"""The contract's error body and the middleware that guarantees it on every failure."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from handlers.common.answers import json_response
from storage.database import is_unavailable_error

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An error answer: `{"error": {"code", "message", "details"}}` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str, details: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details)

    def response(self) -> web.Response:
        return error_response(self.status, self.code, self.message, self.details)


def error_response(
    status: int, code: str, message: str, details: Sequence[Any] = ()
) -> web.Response:
    return json_response(
        {"error": {"code": code, "message": message, "details": list(details)}}, status=status
    )


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic errors without the offending input (it may hold personal data)."""
    return [
        {
            "loc": [str(part) for part in error["loc"]],
            "message": error["msg"],
            "type": error["type"],
        }
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def validation_error(
    exc: ValidationError, message: str = "the request body is invalid"
) -> ApiError:
    return ApiError(422, "validation_error", message, validation_details(exc))


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as the contract's JSON body; never a stack trace."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason)
    except Exception as exc:
        if is_unavailable_error(exc):
            logger.warning("storage unavailable on %s %s: %s", request.method, request.path, exc)
            return error_response(
                503, "storage_unavailable", "the database is unavailable; retry later"
            )
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error; it has been logged")
