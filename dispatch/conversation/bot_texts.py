"""The bot's own texts: Jinja2 templates under `templates/bot/`, Russian, HTML parse mode.

A separate environment from the notification renderer: these are our files (not per-client
sources), so no sandbox budget is needed, but every value that comes from the ERP or from a
Telegram user is HTML-escaped — `*.html.j2` templates autoescape, and `StrictUndefined`
turns a forgotten variable into an error in the tests rather than an empty string in a
chat. `labels.txt.j2` holds the short plain texts (button labels, callback answers, status
names) as top-level `{% set %}` values.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from dispatch.catalogue import EVENT_TYPES
from dispatch.journal.reasons_ru import reason_ru
from dispatch.phones import mask_phone

LABELS_TEMPLATE = "labels.txt.j2"


def _when(value: datetime | None) -> str:
    """`27.11.2026 07:15 UTC`; `-` for no time."""
    if value is None:
        return "-"
    return value.strftime("%d.%m.%Y %H:%M UTC")


def _event_title(code: str | None) -> str:
    if code is None:
        return "-"
    kind = EVENT_TYPES.get(code)
    return kind.title if kind is not None else code


def _shorten(text: str | None, limit: int = 1500) -> str:
    """At most `limit` characters (a Telegram message holds 4096 in all)."""
    if not text:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _default_dir() -> Path:
    return Path(str(files("templates"))) / "bot"


class BotTexts:
    """Renders `templates/bot/<name>`; output is stripped of surrounding blank lines."""

    def __init__(self, template_dir: Path | None = None) -> None:
        self._env = Environment(
            loader=FileSystemLoader(str(template_dir or _default_dir()), encoding="utf-8"),
            autoescape=select_autoescape(
                enabled_extensions=("html.j2",), default_for_string=True, default=False
            ),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self._env.filters["when"] = _when
        self._env.filters["event_title"] = _event_title
        self._env.filters["masked"] = mask_phone
        self._env.filters["shorten"] = _shorten
        self._env.filters["status_name"] = self.status
        self._env.filters["reason_ru"] = reason_ru
        self._env.filters["document_name"] = self.document_name

    def render(self, name: str, **context: Any) -> str:
        text = self._env.get_template(name).render(**context)
        return "\n".join(line.rstrip() for line in text.strip().splitlines())

    @functools.cached_property
    def _labels(self) -> Any:
        return self._env.get_template(LABELS_TEMPLATE).module

    def label(self, name: str) -> str:
        """A plain text from `labels.txt.j2` (a button label, a callback answer)."""
        value = getattr(self._labels, name)
        if not isinstance(value, str):
            raise TypeError(f"label {name!r} is not a text")
        return value

    @property
    def statuses(self) -> Mapping[str, str]:
        """Journal status → its Russian name."""
        value = self._labels.statuses
        return dict(value)

    def status(self, code: str | None) -> str:
        if code is None:
            return "-"
        return self.statuses.get(code, code)

    def document_name(self, kind: str | None, number: str) -> str:
        """`Заказ ЗК-000457`: the kind's Russian name (`labels.txt.j2`) and the number."""
        names: Mapping[str, str] = self._labels.document_kinds
        name = names.get(kind or "") or self.label("document_unknown_kind")
        return f"{name} {number}"
