"""Rendering of notification texts with Jinja2 in a sandbox.

Templates are plain text (SMS / Telegram), so autoescape is off. Two kinds exist: the
files under the ``templates`` package (``events/<code>.<recipient>.txt.j2``) and
per-client template texts stored in the database. The latter come from outside, so both
run in :class:`jinja2.sandbox.ImmutableSandboxedEnvironment`; a render either returns
text or raises :class:`RenderError` with a human-readable reason, never anything else.

Undefined values are strict (printing, testing or iterating a missing value is an
error), but chaining through a missing parent is allowed, so ``document.extra.car is
defined`` and ``document.extra.car|default`` work without guarding ``extra`` first.

Beyond what the Jinja sandbox does (no access to ``_``-prefixed attributes, ``range``
capped at ``MAX_RANGE``), every render gets a budget so that a hostile or careless
per-client template cannot exhaust the process: a wall-clock limit, a cap on loop
iterations and calls, caps on the size of every value built by an operator, call,
filter, literal or concatenation, a cap on the total text built, and a cap on the output.
Only a safe subset of methods of built-in types may be called.

Renders run on the event loop, so the wall-clock limit alone is not enough: it is only
checked between operations. Every single operation is therefore bounded in cost too:
every arithmetic operator refuses integers over :data:`MAX_INT_BITS` (and ``**`` refuses
a result predicted to be larger before computing it), ``sum`` adds numbers only, values
(nested ones included) stay under :data:`MAX_VALUE_SIZE` so that printing or comparing
one is cheap, filters with a superlinear or unbounded step are replaced or dropped, and
callbacks inside filters (attribute look-ups, filters and tests applied per item) check
the clock. Nothing runs at compile time: filters and tests refuse to be constant-folded.
"""

from __future__ import annotations

import re
import string
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import Enum
from functools import wraps
from importlib.resources import files
from pathlib import Path
from typing import Any, NoReturn, cast

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateAssertionError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    nodes,
    pass_environment,
)
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import FilterArgumentError, SecurityError, TemplateError
from jinja2.filters import do_round, make_attrgetter
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import MAX_RANGE, ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, missing
from markupsafe import Markup

__all__ = [
    "MAX_OUTPUT_CHARS",
    "RenderError",
    "Renderer",
    "build_context",
    "date_ru",
    "money",
    "plural_ru",
]

#: The longest text a template may render (a Telegram message is at most 4096).
MAX_OUTPUT_CHARS = 4000
#: The longest string (in characters) any single operation inside a template may build.
MAX_VALUE_CHARS = 10_000
#: The most items any list, tuple or dict built inside a template may hold (as ``range``).
MAX_ITEMS = MAX_RANGE
#: Loop iterations plus calls, filters, tests and operators per render: about 20 ms of
#: the cheapest steps, so a plain runaway loop stops here well before the deadline.
MAX_STEPS = 50_000
#: Total characters of all intermediate strings (and items of all collections) built
#: during one render: half a million is ~30 ms of copying, under the deadline.
MAX_WORK_CHARS = 500_000
#: The largest integer (in bits) any arithmetic inside a template may take or produce.
#: 256 bits is 77 decimal digits: every amount, count, date or id fits many times over,
#: one operation on such numbers costs well under a microsecond, and one prints in at
#: most 78 characters (2**49999 squared eight times took minutes to divide).
MAX_INT_BITS = 256
#: Items plus characters of one value built inside a template, counting nested values
#: every time they appear: what ``str()``, ``==`` or ``sort`` may have to walk. Above the
#: largest ERP event (256 KiB), so filters over a whole document still work.
MAX_VALUE_SIZE = 300_000
#: Wall-clock time one render may take. Renders run on the event loop, and every single
#: operation above is bounded, so this is how long one render can hold the loop. The
#: default templates render in 0.04-0.12 ms, about 1,000 times under it.
MAX_RENDER_SECONDS = 0.1
#: The longest per-client template source accepted.
MAX_SOURCE_CHARS = 20_000
#: How many compiled per-client templates are kept (LRU).
SOURCE_CACHE_SIZE = 256

# Label used in error messages for templates that come from the database.
_SOURCE_LABEL = "per-client template"
# Jinja names the fake traceback frames of from_string() templates like this.
_SOURCE_FILENAME = "<template>"
# ...and gives its fake traceback frames these names (or "block '<name>'").
_TEMPLATE_FRAMES = frozenset({"template", "top-level template code"})


class RenderError(Exception):
    """A template could not be rendered; ``str()`` is a human-readable English reason.

    ``missing_data`` is true when the failure depends on the data rather than on the
    template alone (an undefined value, an empty result): another event may render.
    """

    def __init__(
        self,
        message: str,
        *,
        template: str | None = None,
        lineno: int | None = None,
        missing_data: bool = False,
    ) -> None:
        super().__init__(message)
        self.template = template
        self.lineno = lineno
        self.missing_data = missing_data


# --------------------------------------------------------------------------- budget


@dataclass(slots=True)
class _Budget:
    steps: int
    chars: int
    deadline: float
    context: Mapping[str, Any]
    paths: dict[int, str] | None = None
    # id -> (the container, its size): each container is walked once per render; the
    # container is kept so its id cannot be reused by another object meanwhile.
    sizes: dict[int, tuple[Any, int]] = field(default_factory=dict)

    def path_of(self, obj: Any) -> str | None:
        """The context path of a dict or list (``"document.extra"``), for error messages."""
        if self.paths is None:
            self.paths = _object_paths(self.context)
        return self.paths.get(id(obj))


def _object_paths(context: Mapping[str, Any], limit: int = 10_000) -> dict[int, str]:
    paths: dict[int, str] = {}
    stack: list[tuple[Any, str]] = [(value, str(name)) for name, value in context.items()]
    while stack and len(paths) < limit:
        value, path = stack.pop()
        if id(value) in paths:
            continue
        if isinstance(value, Mapping):
            paths[id(value)] = path
            stack.extend((item, f"{path}.{key}") for key, item in value.items())
        elif isinstance(value, list):
            paths[id(value)] = path
            stack.extend((item, f"{path}[{index}]") for index, item in enumerate(value))
    return paths


_budget: ContextVar[_Budget | None] = ContextVar("vestnik_render_budget", default=None)


def _spend(steps: int = 0, chars: int = 0) -> None:
    """Charge the current render's budget; outside a render (compile time) it is free."""
    budget = _budget.get()
    if budget is None:
        return
    budget.steps -= steps
    budget.chars -= chars
    if budget.steps < 0:
        raise SecurityError(f"the template does too much work (over {MAX_STEPS} steps)")
    if budget.chars < 0:
        raise SecurityError(
            f"the template builds too much text (over {MAX_WORK_CHARS} characters in total)"
        )
    if time.monotonic() > budget.deadline:
        _out_of_time()


def _out_of_time() -> NoReturn:
    raise SecurityError(f"the template took longer than {MAX_RENDER_SECONDS:g} s")


def _tick() -> None:
    """Check the clock only: for callbacks a filter makes per item (attribute look-ups),
    so one filter call over many items cannot outrun the deadline."""
    budget = _budget.get()
    if budget is not None and time.monotonic() > budget.deadline:
        _out_of_time()


def _too_long(what: str = "text") -> NoReturn:
    limit = MAX_VALUE_CHARS if what == "text" else MAX_ITEMS
    unit = "characters" if what == "text" else "items"
    raise SecurityError(f"the template builds a {what} longer than {limit} {unit}")


def _too_big() -> NoReturn:
    raise SecurityError(
        f"the template builds a value too big to handle (over {MAX_VALUE_SIZE} items and "
        "characters, nested values included)"
    )


def _is_big_int(value: Any) -> bool:
    return isinstance(value, int) and value.bit_length() > MAX_INT_BITS


def _check_int(*values: Any) -> None:
    """Refuse integers over MAX_INT_BITS (operands before an operation, or its result)."""
    if any(_is_big_int(value) for value in values):
        raise SecurityError(
            f"the template computes with too large a number (over {MAX_INT_BITS} bits)"
        )


_CONTAINERS = (list, tuple, dict, set, frozenset)


def _size(value: Any, memo: dict[int, tuple[Any, int]]) -> int:
    """Items plus characters of ``value``, nested values counted every time they appear.

    Stops counting once over MAX_VALUE_SIZE (the answer is then only "too big"), so a
    call costs at most the items of the containers not measured before in this render.
    """
    if isinstance(value, str):
        return len(value)
    if not isinstance(value, _CONTAINERS):
        return 1
    hit = memo.get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1]
    total = len(value)
    items: Iterable[Any] = value
    if isinstance(value, dict):
        items = (part for pair in value.items() for part in pair)
    else:
        # Flat sequences (range(…)|list, split()) are sized without a Python-level loop.
        kinds = set(map(type, value))
        if not any(issubclass(kind, (str, *_CONTAINERS)) for kind in kinds):
            memo[id(value)] = (value, total)
            return total
        if all(issubclass(kind, str) for kind in kinds):
            total += sum(map(len, value))
            memo[id(value)] = (value, total)
            return total
    for item in items:
        if total > MAX_VALUE_SIZE:
            break
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, _CONTAINERS):
            total += _size(item, memo)
    memo[id(value)] = (value, total)
    return total


def _checked(value: Any) -> Any:
    """Reject and account for a value just built inside a template."""
    if isinstance(value, str):
        if len(value) > MAX_VALUE_CHARS:
            _too_long()
        _spend(chars=len(value))
    elif isinstance(value, int):
        _check_int(value)
    elif isinstance(value, _CONTAINERS):
        if len(value) > MAX_ITEMS:
            _too_long("collection")
        budget = _budget.get()
        if _size(value, budget.sizes if budget is not None else {}) > MAX_VALUE_SIZE:
            _too_big()
        _spend(chars=len(value))
    elif isinstance(value, (bytes, bytearray)):
        if len(value) > MAX_ITEMS:
            _too_long("collection")
        _spend(chars=len(value))
    return value


def _check_width(width: Any) -> None:
    if isinstance(width, int) and width > MAX_VALUE_CHARS:
        _too_long()


def _check_replace(text: str, old: Any, new: Any, count: Any = -1) -> None:
    old_s, new_s = str(old), str(new)
    hits = text.count(old_s)
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    if len(text) + hits * (len(new_s) - len(old_s)) > MAX_VALUE_CHARS:
        _too_long()


def _join_parts(items: Iterable[Any], separator: str) -> list[str]:
    """Stringify items for a join, failing as soon as the result would be too long."""
    parts: list[str] = []
    total = 0
    for item in items:
        part = str(item)
        total += len(part) + (len(separator) if parts else 0)
        if total > MAX_VALUE_CHARS:
            _too_long()
        parts.append(part)
    return parts


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_percent_format(fmt: str) -> None:
    """Reject ``%`` formats whose width or precision could build a huge string."""
    for match in _PERCENT_SPEC.finditer(fmt):
        for group in match.groups():
            if group == "*" or (group and (len(group) > 6 or int(group) > MAX_VALUE_CHARS)):
                raise SecurityError(f"format width or precision too large in {fmt[:40]!r}")


def _check_brace_format(fmt: str) -> None:
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


def _guard_builtin_method(
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
            _check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else -1)
        elif name == "join" and args:
            # Materialise once so the size is known before str.join allocates.
            return (_join_parts(args[0], owner), *args[1:])
    return args


# --------------------------------------------------------------------------- undefined


class _StrictChainableUndefined(StrictUndefined):
    """StrictUndefined that can be chained: ``a.b.c`` of a missing ``a`` is undefined.

    Printing, comparing, iterating or testing it for truth still raises; only the
    ``defined`` test and the ``default`` filter accept it.
    """

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        # Name the data by its path ("'document.extra' has no attribute 'car'") rather
        # than by its type ("'dict object' has no attribute 'car'") when we can.
        budget = _budget.get()
        if not self._undefined_hint and self._undefined_obj is not missing and budget:
            path = budget.path_of(self._undefined_obj)
            if path is not None:
                if isinstance(self._undefined_name, str):
                    return f"{path!r} has no attribute {self._undefined_name!r}"
                return f"{path!r} has no element {self._undefined_name!r}"
        return str(super()._undefined_message)

    def __getattr__(self, name: str) -> Any:
        # Dunder lookups must fail so Python protocols (copy, pickle) are not fooled.
        if name[:2] == "__" and name[-2:] == "__":
            raise AttributeError(name)
        return self

    def __getitem__(self, _key: Any) -> Any:
        return self


def _fail_if_undefined(value: Any) -> None:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()


# --------------------------------------------------------------------------- filters


_CURRENCY_SIGNS = {"RUB": "₽", "RUR": "₽", "USD": "$", "EUR": "€"}


def _to_decimal(value: Any, what: str) -> Decimal:
    _fail_if_undefined(value)
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
    _fail_if_undefined(currency)
    code = str(currency).strip().upper() if currency else "RUB"
    return f"{text} {_CURRENCY_SIGNS.get(code, code)}"


def date_ru(value: Any) -> Any:
    """Format a date as ``DD.MM.YYYY``: ``"2026-11-27"`` or an ISO datetime → ``"27.11.2026"``.

    The date is taken as written (no time-zone conversion); anything unparseable is
    returned unchanged.
    """
    _fail_if_undefined(value)
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
    return separator.join(_join_parts(items, separator))


def _replace_filter(s: Any, old: Any, new: Any, count: int | None = None) -> str:
    """The ``replace`` filter, sized before it allocates."""
    text = str(s)
    limit = -1 if count is None else count
    _check_replace(text, old, new, limit)
    return text.replace(str(old), str(new), limit)


def _format_filter(value: Any, *args: Any, **kwargs: Any) -> str:
    """The ``format`` filter (``%`` formatting) with widths checked first."""
    if args and kwargs:
        raise FilterArgumentError("can't handle positional and keyword arguments at once")
    fmt = str(value)
    _check_percent_format(fmt)
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
        _tick()
        total = _checked(total + _summand(value))
    return total


def _summand(value: Any) -> Any:
    _fail_if_undefined(value)
    if not isinstance(value, _NUMBERS):
        raise SecurityError(f"sum adds numbers only, not {type(value).__name__}")
    _check_int(value)
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
    _fail_if_undefined(value)
    text = _cut(_cut(str(value), "<!--", "-->"), "<", ">")
    return str(Markup(" ".join(text.split())).unescape())


# Filters that build big values from small arguments or make no sense in a text message.
_DROPPED_FILTERS = (
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


class _NotNow(Exception):
    """A filter or test was asked to run at compile time (constant folding)."""


def _budgeted(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a filter or test so each call costs a step and its result is size-checked.

    Outside a render it refuses to run: Jinja folds filters and tests of constants at
    compile time, where no budget or deadline applies (``1.5|round(10**9, 'ceil')``
    would hang the PUT that merely compiles it). Jinja then leaves the call to run time.
    """

    @wraps(func)  # keeps jinja_pass_arg, so pass_context & co. still work
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _budget.get() is None:
            raise _NotNow(func.__name__)
        _spend(steps=1)
        return _checked(func(*args, **kwargs))

    return wrapper


class _Namespace(Namespace):
    """``namespace()`` whose text is constant: its attributes may each be big, and
    ``str()`` of the namespace would print them all (it holds no data worth printing)."""

    def __repr__(self) -> str:
        return "<namespace>"


# --------------------------------------------------------------------------- environment


class _GuardedCodeGenerator(CodeGenerator):
    """Routes ``~`` concatenation, ``for`` iteration and list, tuple and dict literals
    through the render budget (a literal like ``[a, a, a]`` multiplies the size of ``a``
    without any operator)."""

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self.write("environment.guarded_value(")
        super().visit_List(node, frame)
        self.write(")")

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self.write("environment.guarded_value(")
        super().visit_Dict(node, frame)
        self.write(")")

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx != "load":  # an assignment target (`{% set a, b = … %}`)
            super().visit_Tuple(node, frame)
            return
        self.write("environment.guarded_value(")
        super().visit_Tuple(node, frame)
        self.write(")")

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.guarded_str_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        wrapped = (
            isinstance(node.iter, nodes.Call)
            and isinstance(node.iter.node, nodes.EnvironmentAttribute)
            and node.iter.node.name == "guarded_iter"
        )
        if not wrapped:
            node.iter = nodes.Call(
                nodes.EnvironmentAttribute("guarded_iter", lineno=node.lineno),
                [node.iter],
                [],
                None,
                None,
                lineno=node.lineno,
            )
        super().visit_For(node, frame)


def _guarded_concat(parts: Iterable[str]) -> str:
    """``environment.concat``: joins output buffers (macros, blocks, ``set`` blocks)."""
    text = "".join(_join_parts(parts, ""))
    _checked(text)
    return text


def _finalize(value: Any) -> Any:
    # An optional field that is null in the ERP data prints as nothing, not "None".
    return "" if value is None else value


class _SmsEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with the render budget wired into operators, calls and loops."""

    code_generator_class = _GuardedCodeGenerator
    # Every arithmetic operator Jinja has; an intercepted one is never constant-folded at
    # compile time either (nodes.BinExpr.as_const raises Impossible in a sandbox).
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    intercepted_unops = frozenset({"+", "-"})
    concat = staticmethod(_guarded_concat)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Filters call this per item (`sort(attribute=…)`): the clock is checked here.
        _tick()
        # Context data is JSON: `document.items` means the key, not dict.items().
        if isinstance(obj, Mapping) and isinstance(attribute, str):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: str | Any) -> Any:
        _tick()
        return super().getitem(obj, argument)

    def guarded_value(self, value: Any) -> Any:
        """A list, tuple or dict literal just built: size-checked like any other value."""
        return _checked(value)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _spend(steps=1)
        args = _guard_builtin_method(obj, args, kwargs)
        return _checked(super().call(context, obj, *args, **kwargs))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Every binary operator: its cost is bounded before Python computes it."""
        _spend(steps=1)
        if operator == "%" and isinstance(left, str):
            _check_percent_format(left)
        elif operator == "*" and _is_repeat(left, right):
            seq, times = (left, right) if isinstance(right, int) else (right, left)
            _check_repeat(seq, times)
        else:
            # With both integers under MAX_INT_BITS, + - * / // % cost nanoseconds.
            _check_int(left, right)
            if operator == "**":
                _check_power(left, right)
            elif operator == "+":
                _check_concat(left, right)
        return _checked(super().call_binop(context, operator, left, right))

    def call_unop(self, context: Context, operator: str, arg: Any) -> Any:
        _spend(steps=1)
        _check_int(arg)
        return _checked(super().call_unop(context, operator, arg))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_brace_format(value.__self__)
        return wrapped

    def guarded_iter(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """Iterate for a ``{% for %}`` loop, one budget step per item."""
        for item in iterable:
            _spend(steps=1)
            yield item

    def guarded_str_join(self, values: Iterable[Any]) -> str:
        """The ``~`` operator: stringify and join with the size checked first."""
        return _guarded_concat(values)


def _is_repeat(left: Any, right: Any) -> bool:
    sequences = (str, list, tuple)
    return (isinstance(left, sequences) and isinstance(right, int)) or (
        isinstance(right, sequences) and isinstance(left, int)
    )


def _check_repeat(seq: str | list[Any] | tuple[Any, ...], times: int) -> None:
    """``seq * times``: refuse before allocating what would be too long or too big."""
    if times <= 0:
        return
    if isinstance(seq, str):
        if len(seq) * times > MAX_VALUE_CHARS:
            _too_long()
        return
    if len(seq) * times > MAX_ITEMS:
        _too_long("collection")
    budget = _budget.get()
    if _size(seq, budget.sizes if budget is not None else {}) * times > MAX_VALUE_SIZE:
        _too_big()


def _check_power(base: Any, exponent: Any) -> None:
    """``base ** exponent`` of integers: refuse when the result would surely exceed
    MAX_INT_BITS, so the power is never computed (the result is checked afterwards)."""
    if not (isinstance(base, int) and isinstance(exponent, int)) or exponent <= 0:
        return  # floats overflow by raising; a negative exponent gives a float
    if abs(base) > 1 and (abs(base).bit_length() - 1) * exponent >= MAX_INT_BITS:
        raise SecurityError("the template computes too large a power")


def _check_concat(left: Any, right: Any) -> None:
    """``a + b`` of strings, lists or tuples: refuse before allocating."""
    if isinstance(left, str) and isinstance(right, str):
        if len(left) + len(right) > MAX_VALUE_CHARS:
            _too_long()
    elif (
        isinstance(left, (list, tuple))
        and isinstance(right, (list, tuple))
        and len(left) + len(right) > MAX_ITEMS
    ):
        _too_long("collection")


def _make_environment(template_dir: Path) -> _SmsEnvironment:
    env = _SmsEnvironment(
        loader=FileSystemLoader(str(template_dir), encoding="utf-8"),
        undefined=_StrictChainableUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        finalize=_finalize,
    )
    # lipsum can burn CPU and is no use in a text message.
    env.globals.pop("lipsum", None)
    env.globals["plural_ru"] = plural_ru
    env.globals["namespace"] = _Namespace
    for name in _DROPPED_FILTERS:
        env.filters.pop(name, None)
    env.filters.update(
        money=money,
        date_ru=date_ru,
        plural_ru=plural_ru,
        join=_join_filter,
        replace=_replace_filter,
        format=_format_filter,
        sum=_sum_filter,
        round=_round_filter,
        striptags=_striptags_filter,
    )
    for name, func in list(env.filters.items()):
        env.filters[name] = _budgeted(func)
    for name, test in list(env.tests.items()):
        env.tests[name] = _budgeted(cast(Callable[..., Any], test))
    return env


def _default_template_dir() -> Path:
    return Path(str(files("templates")))


# --------------------------------------------------------------------------- renderer


class Renderer:
    """Renders template files and per-client template texts into plain text.

    ``template_dir`` defaults to the installed ``templates`` package. Output is stripped
    of surrounding whitespace and of trailing spaces on each line; an empty result, an
    output over :data:`MAX_OUTPUT_CHARS` and every template problem raise
    :class:`RenderError`.
    """

    def __init__(self, template_dir: Path | None = None) -> None:
        self._template_dir = (template_dir or _default_template_dir()).resolve()
        self._env = _make_environment(self._template_dir)
        self._sources: OrderedDict[str, Template | RenderError] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def template_dir(self) -> Path:
        """The directory file templates are loaded from."""
        return self._template_dir

    def render(self, template_name: str, context: Mapping[str, Any]) -> str:
        """Render the template file ``template_name`` (relative to the template dir)."""
        label = f"template {template_name!r}"
        try:
            template = self._env.get_template(template_name)
        except TemplateNotFound:
            raise RenderError(f"{label} not found", template=template_name) from None
        except Exception as exc:
            raise self._error(exc, label, template_name) from exc
        return self._run(template, context, label, template_name)

    def render_source(self, source: str, context: Mapping[str, Any]) -> str:
        """Render a per-client template text; compiled templates are cached by source."""
        return self._run(self._compile_source(source), context, _SOURCE_LABEL, None)

    def check_source(self, source: str) -> None:
        """Raise :class:`RenderError` if a per-client template text does not compile."""
        self._compile_source(source)

    def _compile_source(self, source: str) -> Template:
        if not isinstance(source, str):
            raise RenderError(f"{_SOURCE_LABEL}: the template text must be a string")
        if len(source) > MAX_SOURCE_CHARS:
            raise RenderError(
                f"{_SOURCE_LABEL}: the template text is longer than {MAX_SOURCE_CHARS} characters"
            )
        with self._lock:
            cached = self._sources.get(source)
            if cached is not None:
                self._sources.move_to_end(source)
        if cached is None:
            try:
                cached = self._env.from_string(source)
            except Exception as exc:
                # Broken texts are cached too: they would fail the same way every time.
                cached = self._error(exc, _SOURCE_LABEL, None)
            with self._lock:
                self._sources[source] = cached
                while len(self._sources) > SOURCE_CACHE_SIZE:
                    self._sources.popitem(last=False)
        if isinstance(cached, RenderError):
            raise RenderError(str(cached), template=cached.template, lineno=cached.lineno)
        return cached

    def _run(
        self,
        template: Template,
        context: Mapping[str, Any],
        label: str,
        name: str | None,
    ) -> str:
        variables = dict(context)
        deadline = time.monotonic() + MAX_RENDER_SECONDS
        token = _budget.set(_Budget(MAX_STEPS, MAX_WORK_CHARS, deadline, variables))
        try:
            chunks: list[str] = []
            total = 0
            # Streamed, so a runaway loop stops at the limit instead of filling memory.
            for chunk in template.generate(variables):
                total += len(chunk)
                if total > MAX_OUTPUT_CHARS:
                    raise RenderError(
                        f"{label}: rendered text too long (over {MAX_OUTPUT_CHARS} characters)",
                        template=name,
                    )
                chunks.append(chunk)
        except RenderError:
            raise
        except Exception as exc:
            raise self._error(exc, label, name) from exc
        finally:
            _budget.reset(token)
        text = "\n".join(line.rstrip() for line in "".join(chunks).strip().splitlines())
        if not text:
            raise RenderError(
                f"{label}: rendered text is empty", template=name, missing_data=True
            )
        return text

    def _error(self, exc: BaseException, label: str, name: str | None) -> RenderError:
        """Turn any exception from Jinja or from template code into a RenderError."""
        lineno: int | None = None
        if isinstance(exc, TemplateSyntaxError):
            lineno = exc.lineno
            if exc.name and exc.name != name:
                label, name = f"template {exc.name!r}", exc.name
            prefix = "" if isinstance(exc, TemplateAssertionError) else "syntax error: "
            reason = prefix + (exc.message or "invalid template")
        else:
            where = self._locate(exc)
            if where is not None:
                frame_name, lineno = where
                if frame_name is not None and frame_name != name:
                    label, name = f"template {frame_name!r}", frame_name
            reason = _reason(exc)
        location = f"{label} line {lineno}" if lineno else label
        return RenderError(
            f"{location}: {reason}",
            template=name,
            lineno=lineno,
            missing_data=isinstance(exc, UndefinedError),
        )

    def _locate(self, exc: BaseException) -> tuple[str | None, int] | None:
        """Find the innermost template frame of a runtime error.

        Jinja rewrites the traceback so that template code appears as frames named
        "template", "top-level template code" or "block '…'" with the template's
        file name and line.
        """
        frames = traceback.StackSummary.extract(
            traceback.walk_tb(exc.__traceback__), lookup_lines=False
        )
        for frame in reversed(frames):
            if frame.name not in _TEMPLATE_FRAMES and not frame.name.startswith("block "):
                continue
            if frame.filename == _SOURCE_FILENAME:
                return None, frame.lineno or 0
            try:
                relative = Path(frame.filename).relative_to(self._template_dir).as_posix()
            except ValueError:
                relative = frame.filename
            return relative, frame.lineno or 0
        return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UndefinedError):
        return exc.message or "undefined value"
    if isinstance(exc, SecurityError):
        return f"unsafe template code: {exc}"
    if isinstance(exc, TemplateNotFound):
        return f"template {exc.name!r} not found"
    if isinstance(exc, RecursionError):
        return "recursion too deep"
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, OverflowError) and "MAX_RANGE" in str(exc):
        return f"range too big (the limit is {MAX_ITEMS} items)"
    if isinstance(exc, TemplateError):
        return exc.message or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- context


def _plain(value: Any) -> Any:
    """Copy a value into plain JSON-like data (dict, list, str, numbers, bool, None).

    Templates then only ever see data, never ORM objects or other live Python objects.
    """
    if value is None or isinstance(value, (str, bool, int, float, Decimal)):
        return value
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Enum):
        return _plain(value.value)
    return str(value)


def build_context(
    *,
    event: Mapping[str, Any],
    client: Mapping[str, Any],
    manager: Mapping[str, Any] | None,
    document: Mapping[str, Any],
    company: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Build the render context: ``event``, ``client``, ``manager``, ``document``, ``company``.

    Everything is deep-copied into plain data; ``manager`` and ``company`` may be None.
    """
    return {
        "event": _plain(event),
        "client": _plain(client),
        "manager": _plain(manager) if manager is not None else None,
        "document": _plain(document),
        "company": _plain(company) if company is not None else None,
    }
