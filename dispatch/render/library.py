"""The layers an event type's texts come from (CONTRACT §7), lowest first: the packaged file,
the file of the same name in `[templates] dir`, the version saved through the API.

Every replica renders with the versions in use in the database: :class:`StoredTemplates`
reads which version is current per type and recipient (a few dozen small rows) with each
ingest batch, and fetches a source only when its version changed. A save on one replica is
therefore used by the next event on every other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.catalogue import TEMPLATE_FOLDER
from dispatch.render.renderer import Renderer, RenderError
from dispatch.render.telegram_html import markup_problem
from storage.library import templates as store

__all__ = [
    "NO_STORED_TEMPLATES",
    "RECIPIENTS",
    "StoredTemplate",
    "StoredTemplates",
    "TemplateRecipient",
    "TemplateSet",
    "TextRender",
    "file_name",
    "is_telegram",
    "stored_label",
    "telegram_render",
    "text_render",
]

TemplateRecipient = Literal["client", "manager", "client_telegram", "manager_telegram"]
RECIPIENTS: tuple[TemplateRecipient, ...] = get_args(TemplateRecipient)

TextRender = Callable[[Mapping[str, Any]], str]
"""Renders one text from a template context, or raises RenderError."""


def is_telegram(recipient: str) -> bool:
    """A Telegram text (HTML), sent instead of the plain one when the route is Telegram."""
    return recipient.endswith("_telegram")


def file_name(code: str, recipient: str) -> str:
    """The template file of a type and recipient, relative to the template folders."""
    extension = "html.j2" if is_telegram(recipient) else "txt.j2"
    return f"{TEMPLATE_FOLDER}/{code}.{recipient}.{extension}"


def stored_label(code: str, recipient: str, version: int) -> str:
    """How errors name a stored version."""
    return f"stored template {code}.{recipient} v{version}"


@dataclass(frozen=True, slots=True)
class StoredTemplate:
    version: int
    source: str


class TemplateSet:
    """The stored versions in use, by type and recipient (immutable)."""

    __slots__ = ("_codes", "_items")

    def __init__(self, items: Mapping[tuple[str, str], StoredTemplate]) -> None:
        self._items = MappingProxyType(dict(items))
        self._codes = frozenset(code for code, _ in items)

    def has_type(self, code: str) -> bool:
        """Whether any text of type `code` is a stored version."""
        return code in self._codes

    def get(self, code: str, recipient: str) -> StoredTemplate | None:
        return self._items.get((code, recipient))

    def items(self) -> Mapping[tuple[str, str], StoredTemplate]:
        return self._items


NO_STORED_TEMPLATES = TemplateSet({})


class StoredTemplates:
    """This process's copy of the stored layer, brought up to date by :meth:`current`."""

    def __init__(self) -> None:
        self._versions: dict[tuple[str, str], int] = {}
        self._set = NO_STORED_TEMPLATES

    async def current(self, session: AsyncSession) -> TemplateSet:
        """The versions in use now: one small read, and the sources of changed ones."""
        versions = await store.current_versions(session)
        if versions == self._versions:
            return self._set
        known = {
            key: template
            for key, template in self._set.items().items()
            if versions.get(key) == template.version
        }
        wanted = {(*key, version) for key, version in versions.items() if key not in known}
        for (code, recipient, version), source in (
            await store.sources_of(session, wanted)
        ).items():
            known[(code, recipient)] = StoredTemplate(version, source)
        latest = TemplateSet(known)
        # Two batches may refresh at once; either result is the database's state.
        self._set, self._versions = latest, versions
        return latest


def text_render(
    renderer: Renderer, stored: TemplateSet, code: str, recipient: str, template_file: str
) -> TextRender:
    """The plain (SMS) text of `recipient`: the stored version in use, else the file
    `template_file` (the type's own or the one its settings name) from the folders."""
    found = stored.get(code, recipient)
    if found is None:
        return lambda context: renderer.render(template_file, context)
    label = stored_label(code, recipient, found.version)
    return lambda context: renderer.render_source(found.source, context, label=label)


def telegram_render(
    renderer: Renderer, stored: TemplateSet, code: str, recipient: str
) -> TextRender | None:
    """The Telegram text of `recipient` (`client` or `manager`) when the type has one in
    any layer, else None (the plain text then goes by Telegram too)."""
    telegram = f"{recipient}_telegram"
    found = stored.get(code, telegram)
    if found is not None:
        label = stored_label(code, telegram, found.version)
        return lambda context: renderer.render_source(
            found.source, context, html=True, label=label
        )
    name = file_name(code, telegram)
    origin = renderer.origin_of(name)
    if origin is None:
        return None
    if origin == "package":
        return lambda context: renderer.render(name, context)

    def checked(context: Mapping[str, Any]) -> str:
        # A file of `[templates] dir` was never checked as Telegram HTML (a saved version
        # was, the packaged ones are tested): a text Telegram would refuse is not sent.
        text = renderer.render(name, context)
        problem = markup_problem(text)
        if problem is not None:
            raise RenderError(
                f"template {name!r}: Telegram would refuse it as HTML: {problem}", template=name
            )
        return text

    return checked
