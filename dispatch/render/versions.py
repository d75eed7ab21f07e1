"""Editing an event type's templates (CONTRACT §7): the text in use and the layer it comes
from, the variables it may use and its saved versions; saving a new version, checked first
on the type's sample event, and making an older one current again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.errors import DispatchError
from dispatch.render.library import (
    StoredTemplate,
    StoredTemplates,
    TemplateRecipient,
    file_name,
)
from dispatch.render.preview import Variable, check_type_template, template_variables
from dispatch.render.renderer import Renderer, RenderError
from dispatch.runtime_config import EffectiveConfig, RuntimeConfig
from storage.database import Database
from storage.library import templates as store
from storage.library.templates import SavedVersion

logger = logging.getLogger(__name__)

MAX_TEMPLATE_CHARS = 8192
"""The longest template source that may be saved: a text message's template is a few
hundred characters, and every event of the type renders it."""


@dataclass(frozen=True, slots=True)
class TemplateView:
    """A type's template for one recipient, as events use it now."""

    source: str | None
    """None: a Telegram text the type does not have (the plain text goes instead)."""
    version: int
    """The stored version in use; 0 when a file is."""
    origin: Literal["package", "dir", "stored"] | None
    """`stored`, `dir` or `package`; None with no source."""
    file: str
    """The file the folders serve when no stored version is in use."""
    variables: list[Variable]
    history: list[SavedVersion]


class TemplateRefused(DispatchError):
    """A change refused: a new version that fails on the type's sample event (`kind`
    `template`, the reason names the line), or a revert to a version never saved."""

    def __init__(self, message: str, *, field: str, kind: str, lineno: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.kind = kind
        self.lineno = lineno

    @classmethod
    def of(cls, error: RenderError) -> TemplateRefused:
        return cls(str(error), field="source", kind="template", lineno=error.lineno)


class TemplateLibrary:
    """The admin API's view of the template layers of every event type."""

    def __init__(
        self,
        *,
        db: Database,
        config: RuntimeConfig,
        renderer: Renderer,
        stored: StoredTemplates,
    ) -> None:
        self._db = db
        self._config = config
        self._renderer = renderer
        self._stored = stored

    @property
    def stored(self) -> StoredTemplates:
        """The stored layer, shared with ingestion (previews render with it too)."""
        return self._stored

    def _file(self, code: str, recipient: TemplateRecipient, effective: EffectiveConfig) -> str:
        """The file in use below the stored layer: the one the type's settings name, else
        the type's own."""
        settings = effective.event_type(code)
        named = {"client": settings.template_client, "manager": settings.template_manager}
        return named.get(recipient) or file_name(code, recipient)

    async def view(self, code: str, recipient: TemplateRecipient) -> TemplateView:
        async with self._db.sessions() as session:
            stored = await self._stored.current(session)
            return await self._view(session, code, recipient, stored.get(code, recipient))

    async def _view(
        self,
        session: AsyncSession,
        code: str,
        recipient: TemplateRecipient,
        found: StoredTemplate | None,
    ) -> TemplateView:
        """The template with `found` in use (None: the files), as `session` sees it."""
        effective = await self._config.current(session)
        history = await store.history(session, code, recipient)
        name = self._file(code, recipient, effective)
        variables = template_variables(code, effective.notify)
        if found is not None:
            return TemplateView(found.source, found.version, "stored", name, variables, history)
        origin = self._renderer.origin_of(name)
        source = self._renderer.source_of(name) if origin is not None else None
        return TemplateView(source, 0, origin, name, variables, history)

    async def save(
        self, code: str, recipient: TemplateRecipient, source: str, *, actor: str
    ) -> TemplateView:
        """Store `source` as the next version, in use from the next event on; raises
        TemplateRefused, storing nothing, when it fails on the sample event. Answers with
        the version this save made, whatever another admin saves right after."""
        async with self._db.sessions() as session:
            notify = (await self._config.current(session)).notify
        problem = await asyncio.to_thread(
            check_type_template, self._renderer, code, recipient, source, notify
        )
        if problem is not None:
            raise TemplateRefused.of(problem)
        async with self._db.transaction() as session:
            version = await store.add_version(session, code, recipient, source, actor=actor)
            view = await self._view(session, code, recipient, StoredTemplate(version, source))
        logger.info("template %s.%s: version %d saved by %s", code, recipient, version, actor)
        return view

    async def revert(
        self, code: str, recipient: TemplateRecipient, version: int, *, actor: str
    ) -> TemplateView:
        """Make a saved version current again; 0 goes back to the template files."""
        async with self._db.transaction() as session:
            found = None
            if version:
                key = (code, recipient, version)
                source = (await store.sources_of(session, [key])).get(key)
                if source is None:
                    raise await self._unknown(session, code, recipient, version)
                found = StoredTemplate(version, source)
            await store.set_current(session, code, recipient, version or None, actor=actor)
            view = await self._view(session, code, recipient, found)
        what = f"version {version}" if version else "the template files"
        logger.info("template %s.%s: back to %s by %s", code, recipient, what, actor)
        return view

    @staticmethod
    async def _unknown(
        session: AsyncSession, code: str, recipient: str, version: int
    ) -> TemplateRefused:
        saved = sorted(item.version for item in await store.history(session, code, recipient))
        listed = ", ".join(map(str, saved)) or "none"
        return TemplateRefused(
            f"{code}.{recipient} has no version {version} (saved: {listed}; 0 is the "
            "template files)",
            field="version",
            kind="unknown_version",
        )
