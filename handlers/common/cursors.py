"""Cursor pagination of the admin API's lists: opaque page tokens and page sizes."""

from __future__ import annotations

import base64
import binascii
import re

from handlers.common.ids import ROW_ID_MAX

PAGE_LIMIT_DEFAULT = 50
PAGE_LIMIT_MAX = 500

_NOT_A_CURSOR = "not a cursor returned by this list"


def encode_cursor(before_id: int, prefix: str) -> str:
    """An opaque page token: where the next page of a list starts. Each list has its own
    `prefix`, so a cursor of one list is refused by another instead of meaning a position
    in a different table."""
    return base64.urlsafe_b64encode(f"{prefix}{before_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, prefix: str) -> int:
    """The id a cursor of the list with `prefix` stands for; ValueError when it is not one
    of that list's."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError(_NOT_A_CURSOR) from None
    number = text.removeprefix(prefix)
    if not text.startswith(prefix) or not re.fullmatch(r"[0-9]{1,19}", number):
        raise ValueError(_NOT_A_CURSOR)
    if not 0 < int(number) <= ROW_ID_MAX:
        raise ValueError(_NOT_A_CURSOR)
    return int(number)
