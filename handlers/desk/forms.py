"""Reading the desk's forms: small, whole within the body deadline, UTF-8 (the shared
`handlers.common.body.read_form`; its refusals become pages through `pages.page`)."""

from __future__ import annotations

from aiohttp import web

from handlers.common.body import read_form as read_form_body
from handlers.desk.config import DESK

FORM_MAX_BYTES = 16 * 1024
FORM_MAX_FIELDS = 20


async def read_form(request: web.Request, *, max_fields: int = FORM_MAX_FIELDS) -> dict[str, str]:
    """`max_fields`: more only for a table of checkboxes (the event types' flags)."""
    timeout = request.app[DESK].body_timeout_seconds
    return await read_form_body(request, FORM_MAX_BYTES, timeout=timeout, max_fields=max_fields)
