"""The template editor's preview: a source (saved or not) rendered on the type's sample
event with the checks a save makes (`check_type_template`), its SMS figures and cost."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from decimal import Decimal

from aiohttp import web

from dispatch.config import NotifySettings
from dispatch.delivery.channels.sms.base import ProviderError
from dispatch.ops.sms_price import SmsPrice, sms_price
from dispatch.render.library import is_telegram
from dispatch.render.preview import (
    TextPreview,
    check_type_template,
    dry_render,
    sample_context,
)
from dispatch.render.renderer import Renderer, RenderError
from handlers.common.keys import DB, RENDERER, RUNTIME_CONFIG, SMS_PROVIDERS
from handlers.desk.pages import render_text

logger = logging.getLogger(__name__)

PRICE_WAIT_SECONDS = 2.0
"""A provider's price API is asked at most this long: the preview answers as you type."""


@dataclass(frozen=True, slots=True)
class Preview:
    figures: TextPreview
    line: int | None
    telegram: bool
    price: SmsPrice | None

    @property
    def cost(self) -> Decimal | None:
        if self.price is None or self.figures.segments is None or self.telegram:
            return None
        return self.price.amount * self.figures.segments


def _render(
    renderer: Renderer, code: str, recipient: str, source: str, notify: NotifySettings
) -> tuple[TextPreview, int | None]:
    problem = check_type_template(renderer, code, recipient, source, notify)
    if problem is not None:
        return TextPreview.of_error(str(problem)), problem.lineno
    try:
        text = renderer.render_source(
            source, sample_context(code, notify), html=is_telegram(recipient)
        )
    except RenderError as exc:  # the check above passed: only a render's budget is left
        return TextPreview.of_error(str(exc)), exc.lineno
    return TextPreview.of_text(text), None


async def price_of_sms(request: web.Request, notify: NotifySettings) -> SmsPrice | None:
    """What one segment costs with the service notifications use; None when unknown."""
    db = request.app[DB]
    try:
        providers = await request.app[SMS_PROVIDERS].refresh(db)
        provider = providers.get(notify.sms_service or next(iter(providers), ""))
        if provider is None:
            return None
        return await asyncio.wait_for(sms_price(provider, db), PRICE_WAIT_SECONDS)
    except (ProviderError, TimeoutError) as exc:
        logger.info("no SMS price for the template preview: %s", exc)
        return None


async def preview(request: web.Request, code: str, recipient: str, source: str) -> Preview:
    async with request.app[DB].sessions() as session:
        notify = (await request.app[RUNTIME_CONFIG].current(session)).notify
    # A render is CPU-bound (bounded by the sandbox): off the event loop, as a save does.
    figures, line = await asyncio.to_thread(
        _render, request.app[RENDERER], code, recipient, source, notify
    )
    return Preview(figures, line, is_telegram(recipient), await price_of_sms(request, notify))


def _render_own(
    renderer: Renderer, code: str, field: str, source: str, notify: NotifySettings
) -> tuple[TextPreview, int | None]:
    # A client's own text is judged as `PUT /api/v1/clients` judges it (`dry_render`).
    problems = dry_render(renderer, code, {field: source}, notify)
    if problems:
        return TextPreview.of_error(problems[0].message), problems[0].lineno
    try:
        return TextPreview.of_text(
            renderer.render_source(source, sample_context(code, notify))
        ), None
    except RenderError as exc:  # data the sample lacks: real events may carry it
        return TextPreview.of_error(str(exc)), exc.lineno


async def preview_own(request: web.Request, code: str, field: str, source: str) -> Preview:
    """The preview of a client card's own template (`template_client`/`template_manager`)."""
    async with request.app[DB].sessions() as session:
        notify = (await request.app[RUNTIME_CONFIG].current(session)).notify
    figures, line = await asyncio.to_thread(
        _render_own, request.app[RENDERER], code, field, source, notify
    )
    return Preview(figures, line, False, await price_of_sms(request, notify))


def from_htmx(request: web.Request) -> bool:
    """htmx asks for the preview alone; a form posted without the script wants the page."""
    return request.headers.get("HX-Request") == "true"


def fragment(preview: Preview | None, *, empty_text: str | None = None) -> web.Response:
    """The preview's part of the page, for htmx to swap in."""
    context = {} if empty_text is None else {"empty_text": empty_text}
    response = web.Response(
        text=render_text("_preview.html.j2", preview=preview, **context),
        content_type="text/html",
        charset="utf-8",
    )
    response.headers["Cache-Control"] = "no-store"
    return response
