"""Rendering of notification texts: the :class:`Renderer`, its errors and its context.

Two kinds of templates exist: the files under the ``templates`` package
(``events/<code>.<recipient>.txt.j2``) and per-client template texts stored in the
database. Both run in the sandbox of :mod:`dispatch.render.sandbox` under the budget of
:mod:`dispatch.render.limits`; a render either returns text or raises
:class:`RenderError` with a human-readable reason, never anything else.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from importlib.resources import files
from pathlib import Path
from typing import Any

from jinja2 import (
    Template,
    TemplateAssertionError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
)
from jinja2.exceptions import SecurityError, TemplateError

from dispatch.errors import DispatchError
from dispatch.render.limits import (
    MAX_ITEMS,
    MAX_OUTPUT_CHARS,
    MAX_RENDER_SECONDS,
    MAX_SOURCE_CHARS,
    MAX_STEPS,
    MAX_WORK_CHARS,
    SOURCE_CACHE_SIZE,
    Budget,
    current_budget,
)
from dispatch.render.sandbox import make_environment

__all__ = ["RenderError", "Renderer", "build_context"]

# Label used in error messages for templates that come from the database.
_SOURCE_LABEL = "per-client template"
# Jinja names the fake traceback frames of from_string() templates like this.
_SOURCE_FILENAME = "<template>"
# ...and gives its fake traceback frames these names (or "block '<name>'").
_TEMPLATE_FRAMES = frozenset({"template", "top-level template code"})


class RenderError(DispatchError):
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
        self._env = make_environment(self._template_dir)
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
        token = current_budget.set(Budget(MAX_STEPS, MAX_WORK_CHARS, deadline, variables))
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
            current_budget.reset(token)
        text = "\n".join(line.rstrip() for line in "".join(chunks).strip().splitlines())
        if not text:
            raise RenderError(f"{label}: rendered text is empty", template=name, missing_data=True)
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
