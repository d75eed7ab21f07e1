"""Ids taken from a URL path: the ERP's client and manager ids, our own row ids."""

from __future__ import annotations

import re

from aiohttp import web

from handlers.common.errors import ApiError

CARD_ID_MAX_CHARS = 64
"""The ERP's ids are 1 to 64 characters (the `clients.id` / `managers.id` columns)."""

ROW_ID_MAX = 2**63 - 1
"""Our row ids are BIGINT; a larger number can name no row (and would overflow the driver)."""


def card_id_problem(value: str, what: str) -> str | None:
    """Why `value` cannot be the id of a `what` ("client", "manager"), or None."""
    if not 0 < len(value) <= CARD_ID_MAX_CHARS:
        return f"a {what} id is 1 to {CARD_ID_MAX_CHARS} characters"
    # PostgreSQL text cannot hold NUL: refused here rather than failing in the driver.
    if "\x00" in value:
        return f"a {what} id must not contain the NUL character"
    return None


def card_id(request: web.Request, what: str, *, creating: bool = False) -> str:
    """The `{id}` of the path. An id that cannot exist is a 404 for a lookup (not echoed:
    it may be kilobytes or hold a NUL), and a 422 saying why where it would be created."""
    value = request.match_info["id"]
    problem = card_id_problem(value, what)
    if problem is None:
        return value
    if creating:
        raise ApiError(422, "validation_error", problem)
    raise ApiError(404, "not_found", f"no such {what}")


def row_id(request: web.Request, what: str) -> int:
    """The numeric `{id}` of the path; anything that cannot name a row is a 404."""
    raw = request.match_info["id"]
    if re.fullmatch(r"[0-9]{1,19}", raw) and 0 < int(raw) <= ROW_ID_MAX:
        return int(raw)
    raise ApiError(404, "not_found", f"{what} {raw} does not exist")
