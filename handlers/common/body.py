"""Reading a request body whole: up to a cap, within a deadline (issue 11, findings 5 and 6).

`request.content.read(n)` returns whatever has arrived so far, so a body that comes in two
TCP segments was cut in half; `request.read()` waits for a stalled client forever. Every
body the app reads goes through `read_body`: the ERP webhook, delivery receipts and the
admin API's JSON.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.streams import StreamReader

from handlers.common.errors import ApiError

# Admin bodies (settings, client cards, notes) are small; the same cap `request.read()`
# applied before (the app's client_max_size).
ADMIN_MAX_BODY_BYTES = 1024 * 1024

_CHUNK = 64 * 1024


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the body is larger than {limit} bytes")


# `timeout` is a parameter, not the caller's `asyncio.timeout`, because the expiry must
# become the contract's 408 here rather than a TimeoutError (a 500) in every caller.
async def read_body(request: web.Request, limit: int, *, timeout: float) -> bytes:  # noqa: ASYNC109
    """The whole body (Content-Length or chunked), at most `limit` bytes.

    413 `payload_too_large` past the cap (before reading anything when the length is
    announced), 408 `request_timeout` when the whole body has not arrived within `timeout`
    seconds, 400 `bad_request` when the body ends (the client hangs up) before its length.
    """
    length = request.content_length
    if length is not None and length > limit:
        raise _too_large(limit)
    if length == 0:
        return b""  # aiohttp's empty payload refuses even readexactly(0)
    content = request.content
    try:
        if length is not None and content.is_eof():
            # Everything has arrived already (the usual small event in the headers' segment):
            # no deadline to arm; this is the ERP webhook's hot path.
            return await content.readexactly(length)
        async with asyncio.timeout(timeout):
            if length is not None:
                return await content.readexactly(length)
            return await _read_chunked(content, limit)
    except TimeoutError:
        raise ApiError(
            408, "request_timeout", f"the body did not arrive within {timeout:g} s"
        ) from None
    except (asyncio.IncompleteReadError, ConnectionError, web.RequestPayloadError):
        # The client hung up or broke the chunked encoding: nobody is left to read the
        # answer, but it must not end as a 500 with a stack trace in the log.
        raise ApiError(400, "bad_request", "the body ended before its length") from None


async def _read_chunked(content: StreamReader, limit: int) -> bytes:
    body = bytearray()  # chunked transfer: no length announced
    async for chunk in content.iter_chunked(_CHUNK):
        body.extend(chunk)
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


FORM_TYPE = "application/x-www-form-urlencoded"


async def read_form(
    request: web.Request,
    limit: int,
    *,
    timeout: float,  # noqa: ASYNC109 - passed on to `read_body`
    max_fields: int = 100,
) -> dict[str, str]:
    """A browser form's fields, trimmed (a repeated name: its last value), read through
    `read_body`; 415 for another media type, 400 when it is not UTF-8 or has more than
    `max_fields` fields."""
    if request.content_type != FORM_TYPE:
        raise ApiError(
            415, "unsupported_media_type", f"send the form as Content-Type: {FORM_TYPE}"
        )
    body = await read_body(request, limit, timeout=timeout)
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=max_fields,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise ApiError(
            400, "bad_request", "the form is not UTF-8, or it has too many fields"
        ) from None
    return {name: value.strip() for name, value in pairs}
