"""Rendering the desk's pages: the Jinja2 environment of `templates/desk/` (autoescaped),
the headers every page carries, and refusals as a page (or the contract's JSON body for a
caller that does not read HTML)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from aiohttp import web
from jinja2 import Environment

from dispatch.catalogue import EVENT_TYPES
from dispatch.conversation.bot_texts import BotTexts
from dispatch.journal.reasons_ru import reason_ru
from dispatch.phones import mask_phone
from handlers.common.errors import ApiError, error_response
from handlers.common.pages import page_environment
from handlers.desk.static import static_url

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

NAV = (("journal", "/desk/journal", "Журнал"),)
"""The pages in the header, in order; each new page adds its line here."""
ADMIN_NAV = (
    ("settings", "/desk/settings", "Настройки"),
    ("event_types", "/desk/event-types", "Типы событий"),
    ("clients", "/desk/clients", "Клиенты"),
    ("sms_services", "/desk/sms-services", "SMS-сервисы"),
    ("balance", "/desk/balance", "Баланс"),
)
"""The admins' pages, after `NAV` (managers are not shown them)."""

# Scripts and styles from this server only, no inline code, no framing. The links of the
# bot's `/desk` carry a token in their path, so no Referer leaves for another site; within
# the desk it stays ("no-referrer" would make Chromium send `Origin: null` with the forms,
# which the request guard refuses as cross-site).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
_CHANNELS = {"telegram": "Telegram", "sms": "SMS"}
_API_TEXTS = {
    404: "Такой страницы нет.",
    408: "Форма пришла слишком медленно. Повторите.",
    413: "Форма слишком большая.",
}
_RECIPIENTS = {"client": "клиент", "manager": "менеджер", "admin": "администратор"}


class DeskError(Exception):
    """A refusal shown as a page: `text` for the person, `message` (English) for the
    JSON body a non-browser caller gets."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        text: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.text = text
        self.headers = headers or {}


def _when(value: datetime | None) -> str:
    """`27.11.2026 07:15:03 UTC`, as the bot writes times (to the second: the journal's
    steps are often seconds apart)."""
    if value is None:
        return "—"
    return value.strftime("%d.%m.%Y %H:%M:%S UTC")


def _money(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}".replace(".", ",")


def _event_title(code: str) -> str:
    kind = EVENT_TYPES.get(code)
    return kind.title if kind is not None else code


@functools.cache
def texts() -> BotTexts:
    """The bot's labels (status names, document kinds): the desk names things the same."""
    return BotTexts()


@functools.cache
def environment() -> Environment:
    env = page_environment("desk")
    labels = texts()
    env.filters.update(
        when=_when,
        money=_money,
        event_title=_event_title,
        status_name=labels.status,
        document_name=labels.document_name,
        reason_ru=reason_ru,
        masked=mask_phone,
        channel_name=lambda code: _CHANNELS.get(code or "", "—"),
        recipient_name=lambda code: _RECIPIENTS.get(code, code),
    )
    env.globals.update(
        static=static_url,
        nav=NAV,
        admin_nav=ADMIN_NAV,
        statuses=labels.statuses,
        types=EVENT_TYPES,
    )
    return env


def render_text(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def render(
    template: str, *, status: int = 200, user: Any = None, section: str = "", **context: Any
) -> web.Response:
    """A whole page; `user` (a `DeskUser` or None) fills the header."""
    html = render_text(template, user=user, section=section, **context)
    response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def see_other(location: str) -> web.Response:
    """The answer to a form that worked: the browser GETs `location` (post/redirect/get)."""
    return web.Response(status=303, headers={"Location": location})


def _wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


def refusal(request: web.Request, error: DeskError) -> web.Response:
    if _wants_html(request):
        response = render("error.html.j2", status=error.status, text=error.text)
    else:
        response = error_response(error.status, error.code, error.message)
    response.headers.update(error.headers)
    return response


def page(handler: Handler) -> Handler:
    """Wrap a desk view: its refusals become pages, and every answer gets the headers."""

    @functools.wraps(handler)
    async def view(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except DeskError as exc:
            response = refusal(request, exc)
        except ApiError as exc:
            # A shared helper's refusal (an id, a form): said in the person's words.
            text = _API_TEXTS.get(exc.status, "Запрос не удалось прочитать. Повторите.")
            response = refusal(request, DeskError(exc.status, exc.code, exc.message, text))
        except web.HTTPRedirection as exc:
            exc.headers.update(SECURITY_HEADERS)
            raise
        if not response.prepared:  # a stream sent its own before it started
            response.headers.update(SECURITY_HEADERS)
        return response

    return view
