"""The sandboxed Jinja2 environment every template runs in, with the budget wired in.

Templates are plain text (SMS / Telegram), so autoescape is off, except for Telegram's HTML
texts (``*.html.j2`` files, and the environment made with ``html=True`` for stored ones),
where the data they print is escaped. Both kinds (files and texts from the database) run in
:class:`jinja2.sandbox.ImmutableSandboxedEnvironment`. On top of it every operator, call,
loop, literal and concatenation is charged to the render budget
(:mod:`dispatch.render.limits`) and bounded before it runs (:mod:`dispatch.render.bounds`);
filters and tests refuse to be constant-folded, so nothing runs at compile time.

Undefined values are strict (printing, testing or iterating a missing value is an
error), but chaining through a missing parent is allowed, so ``document.extra.car is
defined`` and ``document.extra.car|default`` work without guarding ``extra`` first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, cast

from jinja2 import FileSystemLoader, StrictUndefined, nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, missing

from dispatch.render.bounds import (
    check_brace_format,
    check_concat,
    check_percent_format,
    check_power,
    check_repeat,
    guard_builtin_method,
    is_repeat,
    join_parts,
)
from dispatch.render.filters import CUSTOM_FILTERS, DROPPED_FILTERS, plural_ru
from dispatch.render.limits import check_int, checked, current_budget, spend, tick

__all__ = ["SmsEnvironment", "make_environment"]


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
        budget = current_budget.get()
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
        if current_budget.get() is None:
            raise _NotNow(func.__name__)
        spend(steps=1)
        return checked(func(*args, **kwargs))

    return wrapper


class _Namespace(Namespace):
    """``namespace()`` whose text is constant: its attributes may each be big, and
    ``str()`` of the namespace would print them all (it holds no data worth printing)."""

    def __repr__(self) -> str:
        return "<namespace>"


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
    text = "".join(join_parts(parts, ""))
    checked(text)
    return text


def _finalize(value: Any) -> Any:
    # An optional field that is null in the ERP data prints as nothing, not "None".
    return "" if value is None else value


class SmsEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with the render budget wired into operators, calls and loops."""

    code_generator_class = _GuardedCodeGenerator
    # Every arithmetic operator Jinja has; an intercepted one is never constant-folded at
    # compile time either (nodes.BinExpr.as_const raises Impossible in a sandbox).
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    intercepted_unops = frozenset({"+", "-"})
    concat = staticmethod(_guarded_concat)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Filters call this per item (`sort(attribute=…)`): the clock is checked here.
        tick()
        # Context data is JSON: `document.items` means the key, not dict.items().
        if isinstance(obj, Mapping) and isinstance(attribute, str):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: str | Any) -> Any:
        tick()
        return super().getitem(obj, argument)

    def guarded_value(self, value: Any) -> Any:
        """A list, tuple or dict literal just built: size-checked like any other value."""
        return checked(value)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        spend(steps=1)
        args = guard_builtin_method(obj, args, kwargs)
        return checked(super().call(context, obj, *args, **kwargs))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Every binary operator: its cost is bounded before Python computes it."""
        spend(steps=1)
        if operator == "%" and isinstance(left, str):
            check_percent_format(left)
        elif operator == "*" and is_repeat(left, right):
            seq, times = (left, right) if isinstance(right, int) else (right, left)
            check_repeat(seq, times)
        else:
            # With both integers under MAX_INT_BITS, + - * / // % cost nanoseconds.
            check_int(left, right)
            if operator == "**":
                check_power(left, right)
            elif operator == "+":
                check_concat(left, right)
        return checked(super().call_binop(context, operator, left, right))

    def call_unop(self, context: Context, operator: str, arg: Any) -> Any:
        spend(steps=1)
        check_int(arg)
        return checked(super().call_unop(context, operator, arg))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            check_brace_format(value.__self__)
        return wrapped

    def guarded_iter(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """Iterate for a ``{% for %}`` loop, one budget step per item."""
        for item in iterable:
            spend(steps=1)
            yield item

    def guarded_str_join(self, values: Iterable[Any]) -> str:
        """The ``~`` operator: stringify and join with the size checked first."""
        return _guarded_concat(values)


def _is_html(template_name: str | None) -> bool:
    return template_name is not None and template_name.endswith(".html.j2")


def make_environment(template_dirs: Sequence[Path], *, html: bool = False) -> SmsEnvironment:
    """The sandbox loading files from ``template_dirs`` (the first that has a name wins);
    ``html``: every template escapes what it prints, else only ``*.html.j2`` files do."""
    env = SmsEnvironment(
        loader=FileSystemLoader([str(folder) for folder in template_dirs], encoding="utf-8"),
        undefined=_StrictChainableUndefined,
        autoescape=True if html else _is_html,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        finalize=_finalize,
    )
    # lipsum can burn CPU and is no use in a text message.
    env.globals.pop("lipsum", None)
    env.globals["plural_ru"] = plural_ru
    env.globals["namespace"] = _Namespace
    for name in DROPPED_FILTERS:
        env.filters.pop(name, None)
    env.filters.update(CUSTOM_FILTERS)
    for name, func in list(env.filters.items()):
        env.filters[name] = _budgeted(func)
    for name, test in list(env.tests.items()):
        env.tests[name] = _budgeted(cast(Callable[..., Any], test))
    return env
