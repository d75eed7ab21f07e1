"""Rendering of notification texts: the :class:`Renderer`, its errors and its context.

Two kinds of templates exist: files (``events/<code>.<recipient>.txt.j2``, looked up in
the ``[templates] dir`` folder first, then in the ``templates`` package) and template texts
stored in the database (per client, or versions of a type's template). Both run in the
sandbox of :mod:`dispatch.render.sandbox` under the budget of :mod:`dispatch.render.limits`;
a render either returns text or raises :class:`RenderError` with a human-readable reason,
never anything else. Telegram texts (``*.html.j2`` files, or ``html=True`` sources) escape
the data they print, since Telegram reads them as HTML.
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
from typing import Any, Literal

from jinja2 import (
    Template,
    TemplateAssertionError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
)
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.loaders import split_template_path

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


Origin = Literal["dir", "package"]


class Renderer:
    """Renders template files and stored template texts into plain text (or Telegram HTML).

    ``template_dir`` defaults to the installed ``templates`` package; ``override_dir`` (the
    ``[templates] dir`` setting) holds files that replace the package's of the same relative
    name. Output is stripped of surrounding whitespace and of trailing spaces on each line;
    an empty result, an output over :data:`MAX_OUTPUT_CHARS` and every template problem
    raise :class:`RenderError`.
    """

    def __init__(
        self, template_dir: Path | None = None, *, override_dir: Path | None = None
    ) -> None:
        self._template_dir = (template_dir or _default_template_dir()).resolve()
        self._override_dir = override_dir.resolve() if override_dir is not None else None
        self._search = [d for d in (self._override_dir, self._template_dir) if d is not None]
        self._env = make_environment(self._search)
        self._html_env = make_environment(self._search, html=True)
        self._sources: OrderedDict[tuple[bool, str, str], Template | RenderError] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def template_dir(self) -> Path:
        """The directory of the packaged templates."""
        return self._template_dir

    def origin_of(self, template_name: str) -> Origin | None:
        """Which folder serves the file ``template_name``: the override folder, the
        package, or None when neither has it (or the name leaves the folders)."""
        if Path(template_name).is_absolute():
            return None
        try:
            pieces = split_template_path(template_name)
        except TemplateNotFound:
            return None
        for folder in self._search:
            if folder.joinpath(*pieces).is_file():
                return "dir" if folder == self._override_dir else "package"
        return None

    def source_of(self, template_name: str) -> str:
        """The text of the file ``template_name`` as the renderer would load it."""
        loader = self._env.loader
        assert loader is not None
        try:
            source, _, _ = loader.get_source(self._env, template_name)
        except TemplateNotFound:
            raise RenderError(
                f"template {template_name!r} not found", template=template_name
            ) from None
        return source

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

    def render_source(
        self,
        source: str,
        context: Mapping[str, Any],
        *,
        html: bool = False,
        label: str = _SOURCE_LABEL,
    ) -> str:
        """Render a stored template text (``html``: a Telegram text, its data escaped);
        compiled templates are cached by source. ``label`` names it in errors."""
        return self._run(self._compile_source(source, html, label), context, label, None)

    def check_source(self, source: str) -> None:
        """Raise :class:`RenderError` if a per-client template text does not compile."""
        self._compile_source(source)

    def _compile_source(
        self, source: str, html: bool = False, label: str = _SOURCE_LABEL
    ) -> Template:
        if not isinstance(source, str):
            raise RenderError(f"{label}: the template text must be a string")
        if len(source) > MAX_SOURCE_CHARS:
            raise RenderError(
                f"{label}: the template text is longer than {MAX_SOURCE_CHARS} characters"
            )
        key = (html, label, source)
        with self._lock:
            cached = self._sources.get(key)
            if cached is not None:
                self._sources.move_to_end(key)
        if cached is None:
            try:
                cached = (self._html_env if html else self._env).from_string(source)
            except Exception as exc:
                # Broken texts are cached too: they would fail the same way every time.
                cached = self._error(exc, label, None)
            with self._lock:
                self._sources[key] = cached
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
            path = Path(frame.filename)
            relative = next(
                (path.relative_to(d).as_posix() for d in self._search if path.is_relative_to(d)),
                frame.filename,
            )
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
