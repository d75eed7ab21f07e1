"""Previews: what an SMS text costs, and what an event of a type would say — storing nothing.

The event preview renders with the same inputs ingestion uses (effective settings, the
directory's data for the client and manager overlaid with the event's, the client's own
templates), so what it shows is what the next such event would send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.catalogue import EVENT_TYPES, sample_event
from dispatch.config import NotifySettings
from dispatch.intake.context import event_context
from dispatch.intake.schemas import EventIn
from dispatch.render.library import (
    NO_STORED_TEMPLATES,
    TemplateSet,
    TextRender,
    is_telegram,
    text_render,
)
from dispatch.render.renderer import Renderer, RenderError
from dispatch.render.segments import segment_text
from dispatch.render.telegram_html import markup_problem
from dispatch.runtime_config import RuntimeConfig
from storage import directory


@dataclass(frozen=True, slots=True)
class TextPreview:
    """A text with its SMS figures, or the reason it could not be rendered."""

    text: str | None
    encoding: str | None
    units: int | None
    segments: int | None
    parts: tuple[str, ...]
    error: str | None = None

    @classmethod
    def of_text(cls, text: str) -> TextPreview:
        figures = segment_text(text)
        return cls(text, figures.encoding, figures.units, figures.segments, figures.parts)

    @classmethod
    def of_error(cls, error: str) -> TextPreview:
        return cls(None, None, None, None, (), error)

    def figures_json(self) -> dict[str, Any]:
        """The `sms/preview` answer: encoding, units, segments, parts."""
        return {
            "encoding": self.encoding,
            "units": self.units,
            "segments": self.segments,
            "parts": list(self.parts),
        }

    def as_json(self) -> dict[str, Any]:
        return {"text": self.text, **self.figures_json(), "error": self.error}


@dataclass(frozen=True, slots=True)
class EventPreview:
    client: TextPreview
    manager: TextPreview

    def as_json(self) -> dict[str, Any]:
        return {"client": self.client.as_json(), "manager": self.manager.as_json()}


def preview_sms(text: str) -> TextPreview:
    """Encoding, size and parts of `text` as an SMS (see `dispatch.segments`)."""
    return TextPreview.of_text(text)


def _render(
    renderer: Renderer, own_source: str | None, render: TextRender, context: Mapping[str, Any]
) -> TextPreview:
    """The client's own template when it has one, else the type's text from its layers."""
    try:
        if own_source:
            return TextPreview.of_text(renderer.render_source(own_source, context))
        return TextPreview.of_text(render(context))
    except RenderError as exc:
        return TextPreview.of_error(str(exc))


def _overlay(stored: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The directory's record with the event's fields on top, as ingestion would store it."""
    return {**stored, **given}


async def preview_event(
    session: AsyncSession,
    *,
    config: RuntimeConfig,
    renderer: Renderer,
    event: EventIn,
    stored: TemplateSet = NO_STORED_TEMPLATES,
) -> EventPreview:
    """Render the client and manager texts `event` would produce (`stored`: the versions
    saved through the API); a render error is reported in that recipient's `error`, never
    raised. Reads, never writes."""
    effective = await config.current(session)
    type_settings = effective.event_type(event.type)
    catalogue = EVENT_TYPES[event.type]

    stored_client = await directory.get_client(session, event.client.id)
    client = _overlay(
        {}
        if stored_client is None
        else {
            "id": stored_client.id,
            "name": stored_client.name,
            "phone": stored_client.phone,
            "manager_id": stored_client.manager_id,
            "category": stored_client.category,
            "blocked": stored_client.blocked,
        },
        event.client.model_dump(exclude_unset=True),
    )
    if client.get("manager_id") is None and event.manager is not None:
        client["manager_id"] = event.manager.id
    manager = await _manager(session, event, client.get("manager_id"))

    context = event_context(
        event_id=event.event_id,
        event_type=event.type,
        occurred_at=event.occurred_at,
        client=client,
        manager=manager,
        document=event.document,
        notify=effective.notify,
    )
    own = await directory.get_client_type_setting(session, event.client.id, event.type)
    return EventPreview(
        client=_render(
            renderer,
            own.template_client if own is not None else None,
            text_render(
                renderer,
                stored,
                event.type,
                "client",
                type_settings.template_client or catalogue.template_client,
            ),
            context,
        ),
        manager=TextPreview.of_error(_no_manager(client.get("manager_id")))
        if manager is None
        else _render(
            renderer,
            own.template_manager if own is not None else None,
            text_render(
                renderer,
                stored,
                event.type,
                "manager",
                type_settings.template_manager or catalogue.template_manager,
            ),
            context,
        ),
    )


def _no_manager(manager_id: str | None) -> str:
    """Why there is no manager text: the words ingestion records on the skipped row."""
    if manager_id is None:
        return "the client has no responsible manager"
    return f"responsible manager {manager_id!r} is unknown"


async def _manager(
    session: AsyncSession, event: EventIn, manager_id: str | None
) -> dict[str, Any] | None:
    """The client's responsible manager: the directory's record, with the event's `manager`
    on top when it is that manager (ingestion upserts it first)."""
    if manager_id is None:
        return None
    record = await directory.get_manager(session, manager_id)
    stored = (
        {} if record is None else {"id": record.id, "name": record.name, "phone": record.phone}
    )
    if event.manager is not None and event.manager.id == manager_id:
        return _overlay(stored, event.manager.model_dump(exclude_unset=True))
    return stored or None


# --------------------------------------------------------------------------- dry render


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    """A per-client template that fails on its type's sample event."""

    code: str
    field: str
    """``template_client`` or ``template_manager``."""
    message: str
    lineno: int | None


def body_context(body: Mapping[str, Any], notify: NotifySettings) -> dict[str, Any]:
    """The template context of an event body as the ERP posts it (every part present)."""
    return event_context(
        event_id=body["event_id"],
        event_type=body["type"],
        occurred_at=datetime.fromisoformat(body["occurred_at"]),
        client=body["client"],
        manager=body["manager"],
        document=body["document"],
        notify=notify,
    )


def sample_context(code: str, notify: NotifySettings) -> dict[str, Any]:
    """The template context of the sample event of type ``code``."""
    return body_context(sample_event(code), notify)


Example = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Variable:
    """A value a template of the type may use, as the sample event fills it."""

    name: str
    """Its path in Jinja (`document.number`, `document.lines[0].name`)."""
    type: str
    """`string`, `number`, `boolean`, `list`, `object` or `null` (not set in the sample)."""
    example: Example
    """The sample event's value; null for a list or an object (their items follow)."""


def _variables(path: str, value: Any) -> Iterator[Variable]:
    if isinstance(value, Mapping):
        if path and not value:
            yield Variable(path, "object", None)
        for key, item in value.items():
            yield from _variables(f"{path}.{key}" if path else str(key), item)
    elif isinstance(value, list):
        yield Variable(path, "list", None)
        if value:
            yield from _variables(f"{path}[0]", value[0])
    elif value is None:
        yield Variable(path, "null", None)
    elif isinstance(value, bool):
        yield Variable(path, "boolean", value)
    elif isinstance(value, int | float | Decimal):
        yield Variable(path, "number", value if not isinstance(value, Decimal) else float(value))
    else:
        yield Variable(path, "string", str(value))


def template_variables(code: str, notify: NotifySettings) -> list[Variable]:
    """What a template of type ``code`` may use: every value of its render context, found
    by walking the context of the type's sample event (so the list follows the context and
    the samples, never a list kept by hand); a list is shown with its first item."""
    return list(_variables("", sample_context(code, notify)))


TEMPLATE_FIELDS = {
    "template_client": "client text",
    "template_manager": "manager text",
    "template_attachment": "attachment (HTML)",
}
"""A client card's own templates per type, with what each one is."""


def dry_render(
    renderer: Renderer, code: str, sources: Mapping[str, str], notify: NotifySettings
) -> list[TemplateProblem]:
    """Render per-client templates (field -> source) of type ``code`` with its sample event.

    A template that does not compile, breaks the sandbox's budget or fails otherwise is a
    problem; one that only lacks data the sample does not have (an undefined value, an
    empty text) is not: real events may carry it, and a missing value at send time is
    recorded on the notification. Synchronous and CPU-bound (each render is bounded by
    ``MAX_RENDER_SECONDS``): callers on the event loop run it in a worker thread.
    """
    context = sample_context(code, notify)
    problems: list[TemplateProblem] = []
    for field, source in sources.items():
        try:
            renderer.render_source(source, context, html=field == "template_attachment")
        except RenderError as exc:
            if exc.missing_data:
                continue
            problems.append(
                TemplateProblem(
                    code,
                    field,
                    f"{code}, {TEMPLATE_FIELDS[field]}: {exc} (tried on a sample {code} event)",
                    exc.lineno,
                )
            )
    return problems


async def check_client_templates(
    renderer: Renderer, templates: Mapping[str, Mapping[str, str]], notify: NotifySettings
) -> list[TemplateProblem]:
    """:func:`dry_render` for each type (code -> field -> source), in a worker thread:
    32 renders of up to ``MAX_RENDER_SECONDS`` each must not hold the event loop."""
    if not templates:
        return []

    def run() -> list[TemplateProblem]:
        return [
            problem
            for code, sources in templates.items()
            for problem in dry_render(renderer, code, sources, notify)
        ]

    return await asyncio.to_thread(run)


def check_type_template(
    renderer: Renderer, code: str, recipient: str, source: str, notify: NotifySettings
) -> RenderError | None:
    """Why a new version of a type's template must not be saved, or None.

    Stricter than :func:`dry_render`: the sample event carries every field the type's
    events have, so a value it lacks is a misspelt name, and an empty text a mistake. A
    Telegram text must also be markup Telegram accepts. Synchronous and CPU-bound (one
    render bounded by ``MAX_RENDER_SECONDS``): run it in a worker thread.
    """
    html = is_telegram(recipient)
    label = f"{code}, {recipient} text"
    try:
        text = renderer.render_source(source, sample_context(code, notify), html=html, label=label)
    except RenderError as exc:
        return RenderError(
            f"{exc} (tried on a sample {code} event)", template=exc.template, lineno=exc.lineno
        )
    problem = markup_problem(text) if html else None
    if problem is not None:
        return RenderError(f"{label}: Telegram would refuse it as HTML: {problem}")
    return None
