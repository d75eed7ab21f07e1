"""A fake Telegram Bot API: just what aiogram and our bot call in polling mode.

It answers `/bot<token>/<method>` (GET or POST; JSON, urlencoded or multipart bodies, with
complex fields JSON-encoded inside forms as aiogram sends them) in the real API's shapes.
A method it does not know gets `{"ok": false, "error_code": 404}` and a warning in the log,
so a method the bot starts calling shows up at once.

The fake users' side: `push_text` (a command such as `/start`), `push_contact` (the
"share my phone number" button) and `push_press` (an inline button) queue updates for the
bot's long poll, as Telegram would.

Deliberate differences from Telegram: message ids count across all chats (Telegram counts
per chat), so a message id alone names a message; texts sent with `parse_mode=HTML` are
kept as the user would read them, without the tags.
"""

from __future__ import annotations

import html
import itertools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.sandbox.inbox import Button, FakeUser, Inbox, Line
from dispatch.credentials import same_secret

logger = logging.getLogger(__name__)

JSON = dict[str, Any]

#: Parameters whose value is a plain string in the Bot API; every other form field is
#: JSON-encoded by clients (numbers, booleans, objects, arrays) and decoded here.
STRING_FIELDS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "caption_parse_mode",
        "url",
        "secret_token",
        "callback_query_id",
        "inline_message_id",
        "action",
        "language_code",
        "description",
        "short_description",
        "name",
        "ip_address",
        "file_id",
        "business_connection_id",
        "message_effect_id",
        "emoji",
    }
)
LONG_POLL_LIMIT_SECONDS = 50
_TAG = re.compile(r"<[^>]*>")


class BotApiError(Exception):
    """A Bot API error reply: `{"ok": false, "error_code", "description", "parameters"?}`."""

    def __init__(self, status: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def decode_value(name: str, value: Any) -> Any:
    if name in STRING_FIELDS or not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


async def read_params(request: web.Request) -> JSON:
    """A method's parameters from the query string and a JSON, urlencoded or multipart
    body, decoded as the Bot API does; BotApiError 400 for a body it cannot read."""
    raw: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.body_exists:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise BotApiError(400, "Bad Request: can't parse JSON request") from None
            if not isinstance(body, dict):
                raise BotApiError(400, "Bad Request: JSON object expected")
            raw.update(body)
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    raw[key] = value.file.read()
                elif isinstance(value, bytes | bytearray):
                    # aiohttp hands over non-text/* parts (application/json) as bytes.
                    raw[key] = bytes(value).decode()
                else:
                    raw[key] = value
    return {key: decode_value(key, value) for key, value in raw.items()}


def _reply(status: int, body: JSON) -> web.Response:
    return web.json_response(
        body, status=status, dumps=lambda obj: json.dumps(obj, ensure_ascii=False)
    )


def _int(params: JSON, name: str) -> int:
    value = params.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    raise BotApiError(400, f"Bad Request: {name} is empty or not a number")


def _seen_text(params: JSON) -> str:
    """The text as the user reads it: HTML markup gone, entities decoded."""
    text = params.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BotApiError(400, "Bad Request: message text is empty")
    if str(params.get("parse_mode") or "").lower() == "html":
        return html.unescape(_TAG.sub("", text))
    return text


def _buttons(markup: Any) -> tuple[tuple[Button, ...], ...]:
    """The buttons of an inline keyboard, or of a reply keyboard (those cannot be pressed
    here: the page's subscribe form shares the contact instead)."""
    if not isinstance(markup, dict):
        return ()
    rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
    return tuple(
        tuple(
            Button(str(button.get("text", "")), button.get("callback_data"))
            for button in row
            if isinstance(button, dict)
        )
        for row in rows
        if isinstance(row, list)
    )


class FakeBotApi:
    """The Bot API of one sandbox bot; what the bot sends goes to `inbox`."""

    def __init__(
        self,
        inbox: Inbox,
        token: str,
        *,
        username: str = "vestnik_sandbox_bot",
        first_name: str = "Вестник",
    ) -> None:
        self._inbox = inbox
        self._token = token
        self.bot_user: JSON = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": first_name,
            "username": username,
        }
        self._updates: list[JSON] = []
        # The bot keeps the ids of handled updates in the database, which outlives a sandbox
        # run: ids start from the clock in milliseconds, so a new run never reuses one.
        self._update_ids = itertools.count(int(time.time() * 1000))
        self._message_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._open_queries: dict[str, Line] = {}
        self._stopping = False
        self._methods: dict[str, Callable[[JSON], Awaitable[Any]]] = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "deletewebhook": self._harmless,
            "getwebhookinfo": self._get_webhook_info,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "answercallbackquery": self._answer_callback_query,
            "sendchataction": self._harmless,
            "setmycommands": self._harmless,
            "deletemycommands": self._harmless,
            "close": self._harmless,
            "logout": self._harmless,
        }

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        return app

    def stop(self) -> None:
        """End the long poll in progress at once."""
        self._stopping = True
        self._inbox.changed()

    # ------------------------------------------------------------------ the users' side

    def push_text(self, user: FakeUser, text: str) -> None:
        """The user writes `text` to the bot (a leading `/word` is a command)."""
        body: JSON = {"text": text}
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            body["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        self._push_message(user, body, text)

    def push_contact(self, user: FakeUser) -> None:
        """The user presses "share my phone number": the contact is the user's own."""
        contact = {
            "phone_number": user.phone.lstrip("+"),
            "first_name": user.name,
            "user_id": user.user_id,
        }
        self._push_message(user, {"contact": contact}, f"Поделился номером {user.phone}")

    def push_press(self, user: FakeUser, line: Line, data: str) -> str:
        """The user presses the inline button `data` under the bot's message `line`; returns
        the query id, open until the bot answers it."""
        assert line.message_id is not None
        query_id = f"{self.bot_user['id']}{next(self._query_ids):06d}"
        self._open_queries[query_id] = line
        self._push(
            {
                "callback_query": {
                    "id": query_id,
                    "from": self._user(user),
                    "chat_instance": str(user.user_id),
                    "message": self._bot_message(line.chat_id or user.user_id, line),
                    "data": data,
                }
            }
        )
        return query_id

    def is_open(self, query_id: str) -> bool:
        return query_id in self._open_queries

    def _push_message(self, user: FakeUser, body: JSON, shown: str) -> None:
        message_id = next(self._message_ids)
        self._inbox.add_telegram(
            chat_id=user.user_id, message_id=message_id, text=shown, from_user=True
        )
        message = {
            "message_id": message_id,
            "from": self._user(user),
            "chat": self._chat(user.user_id),
            "date": int(time.time()),
            **body,
        }
        self._push({"message": message})

    def _push(self, update: JSON) -> None:
        self._updates.append({"update_id": next(self._update_ids), **update})
        self._inbox.changed()

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if not same_secret(request.match_info["token"], self._token):
            return _reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        handler = self._methods.get(method.lower())
        try:
            if handler is None:
                logger.warning("sandbox Telegram: the bot called %s, which the fake lacks", method)
                raise BotApiError(404, "Not Found: method not found")
            result = await handler(await read_params(request))
        except BotApiError as exc:
            body: JSON = {"ok": False, "error_code": exc.status, "description": exc.description}
            if exc.parameters:
                body["parameters"] = exc.parameters
            return _reply(exc.status, body)
        return _reply(200, {"ok": True, "result": result})

    # ------------------------------------------------------------------ methods

    async def _harmless(self, params: JSON) -> bool:
        return True

    async def _get_me(self, params: JSON) -> JSON:
        return {
            **self.bot_user,
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _get_webhook_info(self, params: JSON) -> JSON:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}

    async def _get_updates(self, params: JSON) -> list[JSON]:
        offset = _int(params, "offset") if params.get("offset") is not None else 0
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = min(max(int(params.get("timeout") or 0), 0), LONG_POLL_LIMIT_SECONDS)
        await self._inbox.wait_for(lambda: bool(self._updates) or self._stopping, timeout)
        return self._updates[:limit]

    async def _send_message(self, params: JSON) -> JSON:
        chat_id = _int(params, "chat_id")
        line = self._inbox.add_telegram(
            chat_id=chat_id,
            message_id=next(self._message_ids),
            text=_seen_text(params),
            buttons=_buttons(params.get("reply_markup")),
        )
        return self._bot_message(chat_id, line)

    async def _edit_message_text(self, params: JSON) -> JSON:
        line = self._edited(params)
        line.text = _seen_text(params)
        return self._changed(line, params)

    async def _edit_message_reply_markup(self, params: JSON) -> JSON:
        return self._changed(self._edited(params), params)

    def _edited(self, params: JSON) -> Line:
        if params.get("inline_message_id"):
            raise BotApiError(400, "Bad Request: inline messages are not in the sandbox")
        line = self._inbox.find(_int(params, "chat_id"), _int(params, "message_id"))
        if line is None or line.from_user:
            raise BotApiError(400, "Bad Request: message to edit not found")
        return line

    def _changed(self, line: Line, params: JSON) -> JSON:
        # As in Telegram, an edit without reply_markup removes the inline keyboard.
        line.buttons = _buttons(params.get("reply_markup"))
        line.edited = True
        self._inbox.changed()
        assert line.chat_id is not None
        return self._bot_message(line.chat_id, line)

    async def _answer_callback_query(self, params: JSON) -> bool:
        line = self._open_queries.pop(str(params.get("callback_query_id") or ""), None)
        if line is None:
            raise BotApiError(
                400,
                "Bad Request: query is too old and response timeout expired "
                "or query ID is invalid",
            )
        line.answer = str(params.get("text") or "")
        self._inbox.changed()
        return True

    # ------------------------------------------------------------------ shapes

    def _user(self, user: FakeUser) -> JSON:
        return {
            "id": user.user_id,
            "is_bot": False,
            "first_name": user.name,
            "language_code": "ru",
        }

    def _chat(self, chat_id: int) -> JSON:
        return {
            "id": chat_id,
            "type": "private",
            "first_name": self._inbox.user_of_chat(chat_id).name,
        }

    def _bot_message(self, chat_id: int, line: Line) -> JSON:
        message: JSON = {
            "message_id": line.message_id,
            "from": self.bot_user,
            "chat": self._chat(chat_id),
            "date": int(line.at.timestamp()),
            "text": line.text,
        }
        if line.edited:
            message["edit_date"] = int(datetime.now(UTC).timestamp())
        pressable = [
            [{"text": b.text, "callback_data": b.callback_data} for b in row if b.callback_data]
            for row in line.buttons
        ]
        if any(pressable):
            message["reply_markup"] = {"inline_keyboard": [row for row in pressable if row]}
        return message
