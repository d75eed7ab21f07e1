"""The filters and globals templates use beyond Jinja's own, and the ones taken away.

``money``, ``date_ru`` and ``plural_ru`` format Russian texts. ``join``, ``replace``,
``format``, ``sum``, ``round`` and ``striptags`` replace Jinja's versions with ones that
size their result before they allocate or run in linear time (see
:mod:`dispatch.render.bounds`); :data:`DROPPED_FILTERS` build big values from small
arguments or make no sense in a text message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from jinja2 import Environment, pass_environment
from jinja2.exceptions import FilterArgumentError, SecurityError
from jinja2.filters import do_round, make_attrgetter
from jinja2.runtime import Undefined
from markupsafe import Markup

from dispatch.render.bounds import check_percent_format, check_replace, join_parts
from dispatch.render.limits import check_int, checked, tick

__all__ = [
    "CUSTOM_FILTERS",
    "DROPPED_FILTERS",
    "date_ru",
    "fail_if_undefined",
    "money",
    "plural_ru",
]


def fail_if_undefined(value: Any) -> None:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()


_CURRENCY_SIGNS = {"RUB": "₽", "RUR": "₽", "USD": "$", "EUR": "€"}


def _to_decimal(value: Any, what: str) -> Decimal:
    fail_if_undefined(value)
    if isinstance(value, bool) or value is None:
        raise TypeError(f"{what}: expected a number, got {value!r}")
    try:
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, int):
            number = Decimal(value)
        elif isinstance(value, float):
            # repr() keeps the float's shortest decimal form (15230.5, not 15230.49999…).
            number = Decimal(repr(value))
        elif isinstance(value, str):
            cleaned = value.strip().replace("\u00a0", "").replace(" ", "").replace(",", ".")
            number = Decimal(cleaned)
        else:
            raise TypeError(f"{what}: expected a number, got {type(value).__name__}")
    except InvalidOperation:
        raise ValueError(f"{what}: {value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{what}: {value!r} is not a finite number")
    return number


def money(value: Any, currency: Any = "RUB") -> str:
    """Format an amount the Russian way: ``15230.5`` → ``"15 230,50 ₽"``.

    Accepts int, float, Decimal or a numeric string; ``currency`` is an ISO code
    (``RUB`` → ₽, ``USD`` → $, ``EUR`` → €, any other code is printed as is; empty → ₽).
    The thousands separator is a plain space so segment counting stays predictable.
    """
    amount = _to_decimal(value, "money")
    try:
        cents = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise ValueError(f"money: {value!r} is too large") from None
    text = f"{cents:,.2f}".replace(",", " ").replace(".", ",")
    fail_if_undefined(currency)
    code = str(currency).strip().upper() if currency else "RUB"
    return f"{text} {_CURRENCY_SIGNS.get(code, code)}"


def date_ru(value: Any) -> Any:
    """Format a date as ``DD.MM.YYYY``: ``"2026-11-27"`` or an ISO datetime → ``"27.11.2026"``.

    The date is taken as written (no time-zone conversion); anything unparseable is
    returned unchanged.
    """
    fail_if_undefined(value)
    if isinstance(value, (date, datetime)):
        return value.strftime("%d.%m.%Y")
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip()).strftime("%d.%m.%Y")
        except ValueError:
            return value
    return value


def plural_ru(n: Any, one: str, few: str, many: str) -> str:
    """Pick the Russian plural form for ``n``: ``plural_ru(5, "позиция", "позиции", "позиций")``.

    Returns only the word (1 позиция, 2 позиции, 5 позиций, 21 позиция, 1,5 позиции).
    """
    number = _to_decimal(n, "plural_ru")
    # int(Decimal("1e999999999")) would build a billion-digit integer.
    if number and number.adjusted() > 30:
        raise ValueError(f"plural_ru: {n!r} is too large")
    if number != number.to_integral_value():
        return few
    k = abs(int(number))
    if k % 10 == 1 and k % 100 != 11:
        return one
    if 2 <= k % 10 <= 4 and not 12 <= k % 100 <= 14:
        return few
    return many


@pass_environment
def _join_filter(
    environment: Environment,
    value: Iterable[Any],
    d: str = "",
    attribute: str | int | None = None,
) -> str:
    """The ``join`` filter, sized before it allocates."""
    separator = str(d)
    items: Iterable[Any] = value
    if attribute is not None:
        items = map(make_attrgetter(environment, attribute), value)
    return separator.join(join_parts(items, separator))


def _replace_filter(s: Any, old: Any, new: Any, count: int | None = None) -> str:
    """The ``replace`` filter, sized before it allocates."""
    text = str(s)
    limit = -1 if count is None else count
    check_replace(text, old, new, limit)
    return text.replace(str(old), str(new), limit)


def _format_filter(value: Any, *args: Any, **kwargs: Any) -> str:
    """The ``format`` filter (``%`` formatting) with widths checked first."""
    if args and kwargs:
        raise FilterArgumentError("can't handle positional and keyword arguments at once")
    fmt = str(value)
    check_percent_format(fmt)
    return fmt % (kwargs or args)


_NUMBERS = (int, float, Decimal)


@pass_environment
def _sum_filter(
    environment: Environment,
    iterable: Iterable[Any],
    attribute: str | int | None = None,
    start: Any = 0,
) -> Any:
    """The ``sum`` filter for numbers only.

    Python's ``sum`` of lists or strings copies the growing total at every item
    (``([[1]] * 40000)|sum(start=[])`` took 3 s in one call); ``join`` builds text.
    """
    values: Iterable[Any] = iterable
    if attribute is not None:
        values = map(make_attrgetter(environment, attribute), iterable)
    total = _summand(start)
    for value in values:
        tick()
        total = checked(total + _summand(value))
    return total


def _summand(value: Any) -> Any:
    fail_if_undefined(value)
    if not isinstance(value, _NUMBERS):
        raise SecurityError(f"sum adds numbers only, not {type(value).__name__}")
    check_int(value)
    return value


# 10**precision is computed for "ceil" and "floor"; a float has no more than ~330 digits.
_MAX_ROUND_DIGITS = 400


def _round_filter(value: Any, precision: Any = 0, method: str = "common") -> Any:
    """The ``round`` filter with the precision bounded first."""
    if isinstance(precision, int) and abs(precision) > _MAX_ROUND_DIGITS:
        raise SecurityError(f"round precision over {_MAX_ROUND_DIGITS} digits")
    return do_round(value, precision, method)  # type: ignore[arg-type]


def _cut(text: str, opening: str, closing: str) -> str:
    """``text`` without every ``opening``…``closing`` span, in one pass."""
    parts: list[str] = []
    position = 0
    while True:
        start = text.find(opening, position)
        if start == -1:
            break
        end = text.find(closing, start)
        if end == -1:
            break
        parts.append(text[position:start])
        position = end + len(closing)
    parts.append(text[position:])
    return "".join(parts)


def _striptags_filter(value: Any) -> str:
    """The ``striptags`` filter in linear time.

    MarkupSafe re-copies the whole text for every tag it removes (quadratic: a 250 KB
    field of ``<a>`` would take seconds); this removes comments, then tags, then
    collapses whitespace and unescapes entities as MarkupSafe does.
    """
    fail_if_undefined(value)
    text = _cut(_cut(str(value), "<!--", "-->"), "<", ">")
    return str(Markup(" ".join(text.split())).unescape())


# Filters that build big values from small arguments or make no sense in a text message.
DROPPED_FILTERS = (
    "batch",
    "center",
    "e",
    "escape",
    "forceescape",
    "indent",
    "pprint",
    "random",
    "safe",
    "slice",
    "tojson",
    "urlize",
    "wordwrap",
    "xmlattr",
)


#: Filters added to or replacing Jinja's own, by name.
CUSTOM_FILTERS: dict[str, Callable[..., Any]] = {
    "money": money,
    "date_ru": date_ru,
    "plural_ru": plural_ru,
    "join": _join_filter,
    "replace": _replace_filter,
    "format": _format_filter,
    "sum": _sum_filter,
    "round": _round_filter,
    "striptags": _striptags_filter,
}
