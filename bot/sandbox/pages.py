"""The sandbox's page and its JSON twin, and the forms of the fake users.

- `GET /sandbox/`: each fake phone's inbox (segments, encoding, cost) and each fake chat,
  server-rendered in Russian; it works without JavaScript.
- `GET /api/v1/sandbox/messages`: what the phones and chats received, newest last.
- `POST /sandbox/subscribe` (a form: `phone`, `name`): the fake user of that phone sends
  `/start` and then shares its contact, so the real bot links the chat as it would a
  real client's.
- `POST /sandbox/press` (`chat`, `message`, `data`): the chat's user presses an inline
  button of that message.

The forms change state, so the app's request guard stands in front of them as of every
route: a foreign `Host` is refused, and so is a cross-site browser request.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from aiohttp import web
from jinja2 import Environment

from bot.sandbox.inbox import FakeUser, Inbox, Line
from bot.sandbox.sms_gateway import CURRENCY, PRICE_PER_SEGMENT, FakeSmsGateway
from bot.sandbox.telegram_api import FakeBotApi
from dispatch.phones import InvalidPhone, normalise_phone
from handlers.common.answers import json_response
from handlers.common.body import read_form
from handlers.common.errors import ApiError
from handlers.common.keys import DB, HTTP_CONTEXT
from handlers.common.pages import page_environment
from storage import notifications

PAGE_PATH = "/sandbox/"
MESSAGES_PATH = "/api/v1/sandbox/messages"
FORM_MAX_BYTES = 4096
#: How long a form waits for the bot to answer, so the page it leads to shows the answer.
BOT_ANSWER_SECONDS = 5.0
DEFAULT_NAME = "Клиент"


@dataclass(frozen=True, slots=True)
class SandboxParts:
    """What the sandbox's views read."""

    inbox: Inbox
    telegram: FakeBotApi
    gateway: FakeSmsGateway


SANDBOX = web.AppKey("sandbox", SandboxParts)

routes = web.RouteTableDef()


@dataclass(slots=True)
class Conversation:
    """One phone's inbox or one chat, as the page shows it."""

    key: str
    user: FakeUser
    lines: list[Line] = field(default_factory=list)

    @property
    def cost(self) -> Decimal:
        return sum((line.cost for line in self.lines), Decimal(0))


@functools.cache
def _environment() -> Environment:
    environment = page_environment("sandbox")
    environment.filters["money"] = _money
    environment.filters["clock"] = _clock
    return environment


def _money(value: Decimal) -> str:
    """`3.50` → `3,50 ₽`, as a Russian reader writes it."""
    return f"{value:.2f}".replace(".", ",") + " ₽"


def _clock(value: datetime) -> str:
    """The time of day on this machine's clock, where the reader sits."""
    return value.astimezone().strftime("%H:%M:%S")


def _conversations(inbox: Inbox, lines: Iterable[Line]) -> list[Conversation]:
    grouped: dict[str, Conversation] = {}
    for line in lines:
        conversation = grouped.get(line.to)
        if conversation is None:
            user = (
                inbox.user_of_chat(line.chat_id)
                if line.chat_id is not None
                else FakeUser(line.to, DEFAULT_NAME)
            )
            conversation = grouped[line.to] = Conversation(line.to, user)
        conversation.lines.append(line)
    return list(grouped.values())


async def _resolve_notification_ids(request: web.Request, inbox: Inbox) -> None:
    """Fill in which notification each bot message in a chat is, from the journal."""
    unresolved = {
        (line.chat_id, line.message_id): line
        for line in inbox.received()
        if line.channel == "telegram"
        and line.notification_id is None
        and line.chat_id is not None
        and line.message_id is not None
    }
    if not unresolved:
        return
    async with request.app[DB].sessions() as session:
        found = await notifications.telegram_message_notifications(
            session, list(unresolved), since=inbox.started_at
        )
    for key, notification_id in found.items():
        unresolved[key].notification_id = notification_id


def _as_json(line: Line) -> dict[str, Any]:
    item: dict[str, Any] = {
        "channel": line.channel,
        "to": line.to,
        "text": line.text,
        "notification_id": line.notification_id,
        "at": line.at.isoformat(),
    }
    if line.channel == "sms":
        item.update(
            sender=line.sender,
            encoding=line.encoding,
            segments=line.segments,
            cost=str(line.cost),
            currency=CURRENCY,
        )
    else:
        item.update(
            chat_id=line.chat_id,
            message_id=line.message_id,
            edited=line.edited,
            buttons=[
                [{"text": button.text, "callback_data": button.callback_data} for button in row]
                for row in line.buttons
            ],
        )
    return item


@routes.get("/sandbox")
async def page_without_slash(request: web.Request) -> web.StreamResponse:
    raise web.HTTPPermanentRedirect(PAGE_PATH)


@routes.get(PAGE_PATH)
async def page(request: web.Request) -> web.Response:
    parts = request.app[SANDBOX]
    await _resolve_notification_ids(request, parts.inbox)
    lines = parts.inbox.lines()
    html = (
        _environment()
        .get_template("page.html.j2")
        .render(
            phones=_conversations(parts.inbox, (x for x in lines if x.channel == "sms")),
            chats=_conversations(parts.inbox, (x for x in lines if x.channel == "telegram")),
            price=PRICE_PER_SEGMENT,
            balance=parts.gateway.balance,
            page_path=PAGE_PATH,
            messages_path=MESSAGES_PATH,
            default_name=DEFAULT_NAME,
        )
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8")


@routes.get(MESSAGES_PATH)
async def messages(request: web.Request) -> web.Response:
    inbox = request.app[SANDBOX].inbox
    await _resolve_notification_ids(request, inbox)
    body = {"messages": [_as_json(line) for line in inbox.received()]}
    return json_response(body)


async def _form(request: web.Request) -> dict[str, str]:
    timeout = request.app[HTTP_CONTEXT].body_timeout_seconds
    return await read_form(request, FORM_MAX_BYTES, timeout=timeout)


def _invalid(name: str, message: str) -> ApiError:
    return ApiError(
        422,
        "validation_error",
        f"{name}: {message}",
        [{"loc": [name], "message": message, "type": "value_error"}],
    )


def _whole_number(form: dict[str, str], name: str) -> int:
    value = form.get(name, "")
    if not value.isascii() or not value.isdigit():
        raise _invalid(name, "expected a whole number")
    return int(value)


async def _bot_answers(parts: SandboxParts, chat_id: int, act: Callable[[], None]) -> None:
    """Do `act()` (push an update) and wait until the bot writes to the chat once more."""

    def bot_lines() -> int:
        return sum(
            1 for line in parts.inbox.received() if line.chat_id == chat_id and not line.from_user
        )

    before = bot_lines()
    act()
    await parts.inbox.wait_for(lambda: bot_lines() > before, BOT_ANSWER_SECONDS)


@routes.post("/sandbox/subscribe")
async def subscribe(request: web.Request) -> web.StreamResponse:
    parts = request.app[SANDBOX]
    form = await _form(request)
    try:
        phone = normalise_phone(form.get("phone", ""))
    except InvalidPhone:
        raise _invalid("phone", "not a phone number, e.g. +7 916 123-45-67") from None
    user = parts.inbox.user_for(phone, form.get("name", "")[:64] or DEFAULT_NAME)
    # The contact follows the bot's greeting, as a person presses the button it brings.
    await _bot_answers(parts, user.user_id, lambda: parts.telegram.push_text(user, "/start"))
    await _bot_answers(parts, user.user_id, lambda: parts.telegram.push_contact(user))
    raise web.HTTPSeeOther(f"{PAGE_PATH}#chat-{user.user_id}")


@routes.post("/sandbox/press")
async def press(request: web.Request) -> web.StreamResponse:
    parts = request.app[SANDBOX]
    form = await _form(request)
    chat_id = _whole_number(form, "chat")
    line = parts.inbox.find(chat_id, _whole_number(form, "message"))
    if line is None or line.from_user:
        raise ApiError(404, "not_found", "no such bot message in the sandbox's chats")
    data = form.get("data", "")
    if not any(button.callback_data == data for row in line.buttons for button in row):
        raise _invalid("data", "the message has no button with this callback data")
    query_id = parts.telegram.push_press(parts.inbox.user_of_chat(chat_id), line, data)
    await parts.inbox.wait_for(lambda: not parts.telegram.is_open(query_id), BOT_ANSWER_SECONDS)
    raise web.HTTPSeeOther(f"{PAGE_PATH}#chat-{chat_id}")
