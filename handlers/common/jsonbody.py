"""Strict JSON for request bodies: what the ERP or an admin sends, refused clearly when it
could not be stored or would mean two things.

Refused with 400 `invalid_json`: not UTF-8, not JSON, nested too deeply, integers over
Python's 4,300-digit limit, NaN / Infinity or numbers that overflow to them (PostgreSQL's
JSONB cannot store them), a key repeated in one object (which value would count?). Refused
with 422 `validation_error`: a NUL character in any string (PostgreSQL text cannot hold it).
"""

from __future__ import annotations

import json
import math
from typing import Any

from handlers.common.errors import ApiError

_NUL_ESCAPE = b"\\u0000"


class _Refused(ValueError):
    pass


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text[:20]} is too large")
    return value


def _no_constants(name: str) -> Any:
    raise _Refused(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Built in C; a key repeated shows as a shorter dict, and only then is it looked for.
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"the key {key[:40]!r} appears twice in one object")
            seen.add(key)
    return result


def _find_nul(document: Any) -> bool:
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_json(raw: bytes) -> Any:
    """The body as JSON, or ApiError with the contract's error body."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "the body is not valid UTF-8") from None
    try:
        document = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_float=_finite_float,
            parse_constant=_no_constants,
        )
    except _Refused as exc:
        raise ApiError(400, "invalid_json", f"the body is not acceptable JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ApiError(
            400,
            "invalid_json",
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
        ) from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "the JSON is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer over the 4,300-digit conversion limit
        raise ApiError(400, "invalid_json", f"the body is not acceptable JSON: {exc}") from None
    # A NUL can only come from the escape `\u0000` (json.loads refuses raw control
    # characters), so a body without that text needs no walk through the document.
    if _NUL_ESCAPE in raw and _find_nul(document):
        raise ApiError(
            422, "validation_error", "text must not contain the NUL character (\\u0000)"
        )
    return document
