"""What one operation inside a template may cost, checked before Python runs it.

The wall-clock limit is only checked between operations, so an operator, a method call
or a format that builds a huge value in one C call must be refused before it starts:
``**`` refuses a result predicted to be larger than :data:`MAX_INT_BITS`, ``*`` of a
sequence, ``+``, ``str.replace``, ``join`` and the padding methods refuse results over
:data:`MAX_VALUE_CHARS`, formats refuse huge widths, and only a safe subset of methods of
built-in types may be called at all.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from jinja2.exceptions import SecurityError

from dispatch.render.limits import (
    MAX_INT_BITS,
    MAX_ITEMS,
    MAX_VALUE_CHARS,
    MAX_VALUE_SIZE,
    size_of,
    too_big,
    too_long,
)

__all__ = [
    "check_brace_format",
    "check_concat",
    "check_percent_format",
    "check_power",
    "check_repeat",
    "check_replace",
    "guard_builtin_method",
    "is_repeat",
    "join_parts",
]


def _check_width(width: Any) -> None:
    if isinstance(width, int) and width > MAX_VALUE_CHARS:
        too_long()


def check_replace(text: str, old: Any, new: Any, count: Any = -1) -> None:
    old_s, new_s = str(old), str(new)
    hits = text.count(old_s)
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    if len(text) + hits * (len(new_s) - len(old_s)) > MAX_VALUE_CHARS:
        too_long()


def join_parts(items: Iterable[Any], separator: str) -> list[str]:
    """Stringify items for a join, failing as soon as the result would be too long."""
    parts: list[str] = []
    total = 0
    for item in items:
        part = str(item)
        total += len(part) + (len(separator) if parts else 0)
        if total > MAX_VALUE_CHARS:
            too_long()
        parts.append(part)
    return parts


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


def check_percent_format(fmt: str) -> None:
    """Reject ``%`` formats whose width or precision could build a huge string."""
    for match in _PERCENT_SPEC.finditer(fmt):
        for group in match.groups():
            if group == "*" or (group and (len(group) > 6 or int(group) > MAX_VALUE_CHARS)):
                raise SecurityError(f"format width or precision too large in {fmt[:40]!r}")


def check_brace_format(fmt: str) -> None:
    """Reject ``str.format`` specs that are nested or could build a huge string."""
    for _literal, _field, spec, _conversion in string.Formatter().parse(fmt):
        if not spec:
            continue
        if "{" in spec:
            raise SecurityError("nested format specifications are not allowed")
        for number in re.findall(r"\d+", spec):
            if len(number) > 6 or int(number) > MAX_VALUE_CHARS:
                raise SecurityError(f"format width or precision too large in {fmt[:40]!r}")


# Methods of built-in types a template may call; any other method of these types is
# refused (e.g. str.translate or int.to_bytes can build huge values in one call).
_SAFE_METHODS: tuple[tuple[type, frozenset[str]], ...] = (
    (
        str,
        frozenset(
            {
                "capitalize",
                "casefold",
                "center",
                "count",
                "endswith",
                "find",
                "index",
                "isalnum",
                "isalpha",
                "isdecimal",
                "isdigit",
                "islower",
                "isnumeric",
                "isspace",
                "istitle",
                "isupper",
                "join",
                "ljust",
                "lower",
                "lstrip",
                "partition",
                "removeprefix",
                "removesuffix",
                "replace",
                "rfind",
                "rindex",
                "rjust",
                "rpartition",
                "rsplit",
                "rstrip",
                "split",
                "splitlines",
                "startswith",
                "strip",
                "swapcase",
                "title",
                "upper",
                "zfill",
            }
        ),
    ),
    (dict, frozenset({"get", "items", "keys", "values"})),
    (list, frozenset({"count", "index"})),
    (tuple, frozenset({"count", "index"})),
    (bytes, frozenset()),
    (bytearray, frozenset()),
    (int, frozenset()),
    (float, frozenset({"is_integer"})),
    (complex, frozenset()),
    (Decimal, frozenset()),
    (set, frozenset()),
    (frozenset, frozenset()),
)


def guard_builtin_method(
    obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """Refuse unsafe built-in methods and pre-check the growing ones; may rewrite args."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    allowed = next((names for kind, names in _SAFE_METHODS if isinstance(owner, kind)), None)
    if allowed is None:
        return args
    if name not in allowed:
        raise SecurityError(f"calling {type(owner).__name__}.{name}() is not allowed")
    if isinstance(owner, str):
        if name in {"center", "ljust", "rjust", "zfill"}:
            _check_width(args[0] if args else kwargs.get("width"))
        elif name == "replace" and len(args) >= 2:
            check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else -1)
        elif name == "join" and args:
            # Materialise once so the size is known before str.join allocates.
            return (join_parts(args[0], owner), *args[1:])
    return args


def is_repeat(left: Any, right: Any) -> bool:
    sequences = (str, list, tuple)
    return (isinstance(left, sequences) and isinstance(right, int)) or (
        isinstance(right, sequences) and isinstance(left, int)
    )


def check_repeat(seq: str | list[Any] | tuple[Any, ...], times: int) -> None:
    """``seq * times``: refuse before allocating what would be too long or too big."""
    if times <= 0:
        return
    if isinstance(seq, str):
        if len(seq) * times > MAX_VALUE_CHARS:
            too_long()
        return
    if len(seq) * times > MAX_ITEMS:
        too_long("collection")
    if size_of(seq) * times > MAX_VALUE_SIZE:
        too_big()


def check_power(base: Any, exponent: Any) -> None:
    """``base ** exponent`` of integers: refuse when the result would surely exceed
    MAX_INT_BITS, so the power is never computed (the result is checked afterwards)."""
    if not (isinstance(base, int) and isinstance(exponent, int)) or exponent <= 0:
        return  # floats overflow by raising; a negative exponent gives a float
    if abs(base) > 1 and (abs(base).bit_length() - 1) * exponent >= MAX_INT_BITS:
        raise SecurityError("the template computes too large a power")


def check_concat(left: Any, right: Any) -> None:
    """``a + b`` of strings, lists or tuples: refuse before allocating."""
    if isinstance(left, str) and isinstance(right, str):
        if len(left) + len(right) > MAX_VALUE_CHARS:
            too_long()
    elif (
        isinstance(left, (list, tuple))
        and isinstance(right, (list, tuple))
        and len(left) + len(right) > MAX_ITEMS
    ):
        too_long("collection")
