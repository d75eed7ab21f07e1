"""The render budget: the limits every render runs under, and the accounting against them.

A per-client template comes from outside, so beyond what the Jinja sandbox does (no access
to ``_``-prefixed attributes, ``range`` capped at ``MAX_RANGE``) every render gets a budget
so that a hostile or careless template cannot exhaust the process: a wall-clock limit, a
cap on loop iterations and calls, caps on the size of every value built by an operator,
call, filter, literal or concatenation, a cap on the total text built, and a cap on the
output.

Renders run on the event loop, so the wall-clock limit alone is not enough: it is only
checked between operations. Every single operation is therefore bounded in cost too
(:mod:`dispatch.render.bounds`): integers stay under :data:`MAX_INT_BITS`, values (nested
ones included) stay under :data:`MAX_VALUE_SIZE` so that printing or comparing one is
cheap, and callbacks inside filters check the clock (:func:`tick`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, NoReturn

from jinja2.exceptions import SecurityError
from jinja2.sandbox import MAX_RANGE

__all__ = [
    "MAX_INT_BITS",
    "MAX_ITEMS",
    "MAX_OUTPUT_CHARS",
    "MAX_RENDER_SECONDS",
    "MAX_SOURCE_CHARS",
    "MAX_STEPS",
    "MAX_VALUE_CHARS",
    "MAX_VALUE_SIZE",
    "MAX_WORK_CHARS",
    "SOURCE_CACHE_SIZE",
    "Budget",
    "check_int",
    "checked",
    "current_budget",
    "is_big_int",
    "size_of",
    "spend",
    "tick",
    "too_big",
    "too_long",
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


@dataclass(slots=True)
class Budget:
    """What the current render may still spend, and what it needs for error messages."""

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


#: The budget of the render running in this context; None outside a render (compile time).
current_budget: ContextVar[Budget | None] = ContextVar("vestnik_render_budget", default=None)


def spend(steps: int = 0, chars: int = 0) -> None:
    """Charge the current render's budget; outside a render (compile time) it is free."""
    budget = current_budget.get()
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


def tick() -> None:
    """Check the clock only: for callbacks a filter makes per item (attribute look-ups),
    so one filter call over many items cannot outrun the deadline."""
    budget = current_budget.get()
    if budget is not None and time.monotonic() > budget.deadline:
        _out_of_time()


def too_long(what: str = "text") -> NoReturn:
    limit = MAX_VALUE_CHARS if what == "text" else MAX_ITEMS
    unit = "characters" if what == "text" else "items"
    raise SecurityError(f"the template builds a {what} longer than {limit} {unit}")


def too_big() -> NoReturn:
    raise SecurityError(
        f"the template builds a value too big to handle (over {MAX_VALUE_SIZE} items and "
        "characters, nested values included)"
    )


def is_big_int(value: Any) -> bool:
    return isinstance(value, int) and value.bit_length() > MAX_INT_BITS


def check_int(*values: Any) -> None:
    """Refuse integers over MAX_INT_BITS (operands before an operation, or its result)."""
    if any(is_big_int(value) for value in values):
        raise SecurityError(
            f"the template computes with too large a number (over {MAX_INT_BITS} bits)"
        )


_CONTAINERS = (list, tuple, dict, set, frozenset)


def size_of(value: Any) -> int:
    """:func:`_size` with the current render's memo (a fresh one outside a render)."""
    budget = current_budget.get()
    return _size(value, budget.sizes if budget is not None else {})


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


def checked(value: Any) -> Any:
    """Reject and account for a value just built inside a template."""
    if isinstance(value, str):
        if len(value) > MAX_VALUE_CHARS:
            too_long()
        spend(chars=len(value))
    elif isinstance(value, int):
        check_int(value)
    elif isinstance(value, _CONTAINERS):
        if len(value) > MAX_ITEMS:
            too_long("collection")
        if size_of(value) > MAX_VALUE_SIZE:
            too_big()
        spend(chars=len(value))
    elif isinstance(value, (bytes, bytearray)):
        if len(value) > MAX_ITEMS:
            too_long("collection")
        spend(chars=len(value))
    return value
