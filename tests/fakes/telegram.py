"""A loopback Telegram Bot API server that the real aiogram `Bot` talks to over HTTP.

    async with FakeTelegram() as fake:
        bot = fake.make_bot()          # or Bot(token, session=AiohttpSession(
                                       #     api=TelegramAPIServer.from_base(fake.base_url)))
        await bot.send_message(42, "Заказ готов")
        assert fake.messages_to(42)[0].text == "Заказ готов"

It answers `/bot{token}/{method}` (GET or POST; JSON, urlencoded or multipart bodies, with
complex fields JSON-encoded inside forms as aiogram sends them) and `/file/bot{token}/{path}`
with the real API's response shapes and error bodies, so aiogram raises exactly the
exceptions it raises in production. Tests drive it with `fail_next`, `block`, `latency` and
the rate limits, feed the bot with `push_update` and the update builders, and read what the
bot did from `sent`, `edits`, `callback_answers`, `webhook`, `requests`, `calls`.

Deliberate differences from Telegram: webhooks may be plain http (loopback), message ids
count per chat from 1, and parse_mode is accepted but not parsed (the text is kept as sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import re
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import EllipsisType, TracebackType
from typing import Any, Literal, Self, get_args

import aiohttp
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiohttp import web

# The request decoding and the error type are the sandbox's fake Bot API's (one reading of
# the wire format for both fakes).
from bot.sandbox.telegram_api import BotApiError as _ApiError
from bot.sandbox.telegram_api import decode_value, read_params

JSON = dict[str, Any]

DEFAULT_TOKEN = "123456789:AAF4k3-T0k3n_for_Vestnik_tests_only00"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

ErrorName = Literal[
    "retry_after",
    "blocked",
    "chat_not_found",
    "bad_request",
    "server_error",
    "bad_gateway",
    "timeout",
    "unauthorized",
    "migrated",
    "proxy_html",
]
"""What `fail_next` can inject. `proxy_html` is the HTML 502 page a proxy in front of the
API returns (not JSON: aiogram raises ClientDecodeError); `migrated` is a group upgraded to a
supergroup (400 with migrate_to_chat_id)."""

_ERRORS: frozenset[str] = frozenset(get_args(ErrorName))

# (status, description) exactly as api.telegram.org words them.
_INJECTED: dict[str, tuple[int, str]] = {
    "blocked": (403, "Forbidden: bot was blocked by the user"),
    "chat_not_found": (400, "Bad Request: chat not found"),
    "bad_request": (400, "Bad Request: message is too long"),
    "server_error": (500, "Internal Server Error"),
    "bad_gateway": (502, "Bad Gateway"),
    "unauthorized": (401, "Unauthorized"),
    "migrated": (400, "Bad Request: group chat was upgraded to a supergroup chat"),
}

_PROXY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
    "</body>\r\n</html>\r\n"
)

# Methods that put a message into a chat: counted by the rate limits.
_MESSAGE_METHODS = frozenset({"sendmessage", "copymessage", "forwardmessage"})
# Besides every send*, the methods refused with 403 when the user blocked the bot.
_CHAT_METHODS = frozenset(
    {"copymessage", "forwardmessage", "editmessagetext", "editmessagereplymarkup"}
)
# Telegram's default when allowed_updates was never given (or given as []).
_NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_PARSE_MODES = frozenset({"html", "markdown", "markdownv2"})
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_TEXT_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: JSON | str

    @classmethod
    def ok(cls, result: Any) -> _Reply:
        return cls(200, {"ok": True, "result": result})

    @classmethod
    def error(cls, status: int, description: str, parameters: JSON | None = None) -> _Reply:
        body: JSON = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return cls(status, body)

    def response(self) -> web.Response:
        if isinstance(self.body, str):
            return web.Response(status=self.status, text=self.body, content_type="text/html")
        return web.json_response(
            self.body, status=self.status, dumps=lambda o: json.dumps(o, ensure_ascii=False)
        )


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One message the bot put into a chat (sendMessage, copyMessage or forwardMessage)."""

    chat_id: int
    text: str | None
    message_id: int
    parse_mode: str | None = None
    reply_markup: JSON | None = None
    reply_to_message_id: int | None = None
    link_preview_options: JSON | None = None
    method: str = "sendMessage"
    time: float = 0.0
    """The fake's clock (time.monotonic by default) when it accepted the message."""
    params: JSON = field(default_factory=dict)
    """Every decoded request parameter."""


@dataclass(frozen=True, slots=True)
class EditedMessage:
    method: str
    chat_id: int | None
    message_id: int | None
    inline_message_id: str | None
    text: str | None
    reply_markup: JSON | None
    time: float


@dataclass(frozen=True, slots=True)
class CallbackAnswer:
    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None
    time: float


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One method call as the fake saw it (after the token check)."""

    method: str
    params: JSON
    status: int
    time: float


@dataclass(slots=True)
class WebhookState:
    """What the last setWebhook/deleteWebhook left; `url == ""` means no webhook."""

    url: str = ""
    secret_token: str | None = None
    drop_pending_updates: bool | None = None
    allowed_updates: list[str] | None = None
    max_connections: int | None = None
    ip_address: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """The bot's answer to one webhook POST. When the bot replied with a method call (aiogram's
    `handle_in_background=False`), the fake executed it as Telegram does: `method` names it
    and `result` is the API reply body."""

    status: int
    body: str
    method: str | None = None
    result: JSON | str | None = None


@dataclass(slots=True)
class _FailRule:
    method: str
    chat_id: int | str | None
    remaining: int
    error: str
    retry_after: int
    description: str | None
    hold: float
    migrate_to_chat_id: int


class LoopbackSession(AiohttpSession):
    """aiogram's own aiohttp session; only `close()` skips the 250 ms grace aiogram waits for
    TLS connections to shut down, which a plain-HTTP loopback server does not need."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def _chat_id(value: Any) -> int:
    """A numeric chat id from a parameter; "@username" chats are unknown to the fake."""
    if isinstance(value, bool):
        raise _ApiError(400, "Bad Request: chat not found")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    if value is None or value == "":
        raise _ApiError(400, "Bad Request: chat_id is empty")
    raise _ApiError(400, "Bad Request: chat not found")


def _int(value: Any, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _ApiError(400, f"Bad Request: invalid integer value {value!r}") from None


def _utf16_len(text: str) -> int:
    # Telegram measures text in UTF-16 code units (an emoji outside the BMP counts twice).
    return len(text.encode("utf-16-le")) // 2


def _check_text(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise _ApiError(400, "Bad Request: message text is empty")
    if _utf16_len(text) > _TEXT_LIMIT:
        raise _ApiError(400, "Bad Request: message is too long")
    return text


def _check_parse_mode(parse_mode: Any) -> str | None:
    if parse_mode in (None, ""):
        return None
    if not isinstance(parse_mode, str) or parse_mode.lower() not in _PARSE_MODES:
        raise _ApiError(400, f"Bad Request: unsupported parse_mode {parse_mode!r}")
    return parse_mode


def _check_markup(markup: Any) -> JSON | None:
    """Validate reply_markup the way Telegram rejects the usual mistakes."""
    if markup is None or markup == "":
        return None
    if not isinstance(markup, dict):
        raise _ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return markup
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _ApiError(400, 'Bad Request: field "inline_keyboard" must be an Array of Arrays')
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise _ApiError(400, "Bad Request: can't parse inline keyboard button")
            actions = [key for key in _BUTTON_ACTIONS if key in button]
            if len(actions) != 1:
                raise _ApiError(
                    400,
                    "Bad Request: can't parse inline keyboard button: "
                    "Text buttons are unallowed in the inline keyboard",
                )
            data = button.get("callback_data")
            if "callback_data" in button and (
                not isinstance(data, str) or not 1 <= len(data.encode()) <= 64
            ):
                raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    return markup


def _update_type(update: JSON) -> str:
    return next((key for key in update if key != "update_id"), "")


class FakeTelegram:
    """The Telegram Bot API on 127.0.0.1, for one bot token.

    Constructor arguments (all attributes of the same name may be changed while running):
    `token` (requests with another token get 401), `username` / `first_name` (getMe),
    `latency` (seconds added to every request), `per_second` / `per_chat_per_second`
    (enforced limits on messages over a sliding 1 s window; None = off), `rate_retry_after`
    (the retry_after of those 429s; None = until the window frees a slot, at least 1 s),
    `timeout_hold` (how long an injected "timeout" holds its request), `strict_chats`
    (sends to a chat that never wrote to the bot and was not `add_chat`-ed get
    "chat not found", as in Telegram), `clock` (the time source of the rate windows and of
    the records' `time`; a test may pass its own to move time without sleeping).
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        username: str = "vestnik_test_bot",
        first_name: str = "Вестник",
        latency: float = 0.0,
        per_second: int | None = None,
        per_chat_per_second: int | None = None,
        rate_retry_after: int | None = None,
        timeout_hold: float = 30.0,
        strict_chats: bool = False,
        clock: Callable[[], float] = time.monotonic,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.username = username
        self.first_name = first_name
        self.latency = latency
        self.per_second = per_second
        self.per_chat_per_second = per_chat_per_second
        self.rate_retry_after = rate_retry_after
        self.timeout_hold = timeout_hold
        self.strict_chats = strict_chats
        self.clock = clock
        self._host = host
        self._port = port

        # What tests read.
        self.sent: list[SentMessage] = []
        self.edits: list[EditedMessage] = []
        self.callback_answers: list[CallbackAnswer] = []
        self.deleted: list[tuple[int, int]] = []
        self.chat_actions: list[tuple[int, str]] = []
        self.commands: dict[str, list[JSON]] = {}
        self.bot_profile: dict[str, Any] = {}
        self.webhook = WebhookState()
        self.requests: Counter[str] = Counter()
        self.calls: list[ApiCall] = []
        self.rejected_429 = 0

        self._rules: list[_FailRule] = []
        self._blocked: set[int] = set()
        self._known_chats: set[int] = set()
        self._chats: dict[int, JSON] = {}
        self._messages: dict[tuple[int, int], JSON] = {}
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._open_queries: set[str] = set()
        self._files: dict[str, tuple[str, bytes]] = {}
        self._queue: list[JSON] = []
        self._allowed_updates: list[str] | None = None
        self._update_ids = itertools.count(100_001)
        self._query_ids = itertools.count(1)
        self._poll_generation = 0
        self._bot_window: deque[float] = deque()
        self._chat_windows: dict[int, deque[float]] = {}

        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._bots: list[Bot] = []
        self._base_url: str | None = None
        self._methods: dict[str, Callable[[JSON], Awaitable[Any]]] = {
            "getme": self._get_me,
            "sendmessage": self._send_message,
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "answercallbackquery": self._answer_callback_query,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "sendchataction": self._send_chat_action,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "setmydescription": self._set_profile("description"),
            "setmyshortdescription": self._set_profile("short_description"),
            "setmyname": self._set_profile("name"),
            "deletemessage": self._delete_message,
            "copymessage": self._copy_message,
            "forwardmessage": self._forward_message,
            "getfile": self._get_file,
            "close": self._harmless,
            "logout": self._harmless,
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        """Listen on loopback; returns the base URL for `TelegramAPIServer.from_base`."""
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        # A short shutdown timeout: held and long-polling requests end on `_stopping` anyway.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        port = self._runner.addresses[0][1]
        self._base_url = f"http://{self._host}:{port}"
        return self._base_url

    async def stop(self) -> None:
        """End held and long-polling requests at once, close bots made here, stop listening."""
        self._stopping.set()
        self._notify()
        # The server first, so that held requests answer before the bots' sessions close.
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for bot in self._bots:
            await bot.session.close()
        self._bots.clear()
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("FakeTelegram is not started")
        return self._base_url

    @property
    def api(self) -> TelegramAPIServer:
        return TelegramAPIServer.from_base(self.base_url)

    def make_bot(
        self,
        token: str | None = None,
        *,
        timeout: float = 2.0,
        default: DefaultBotProperties | None = None,
    ) -> Bot:
        """A real aiogram Bot pointed at this server (session timeout `timeout` s); `stop()`
        closes its session."""
        session = LoopbackSession(api=self.api, timeout=timeout)
        bot = Bot(token or self.token, session=session, default=default)
        self._bots.append(bot)
        return bot

    # ------------------------------------------------------------------ injection

    def fail_next(
        self,
        method: str,
        *,
        chat_id: int | str | None = None,
        times: int = 1,
        error: ErrorName = "retry_after",
        retry_after: int = 1,
        description: str | None = None,
        hold: float | None = None,
        migrate_to_chat_id: int = -1001234567890,
    ) -> None:
        """Answer the next `times` calls of `method` (to `chat_id`, when given) with `error`.

        The bodies are the real API's: 429 "Too Many Requests: retry after N" with
        parameters.retry_after, 403 "Forbidden: bot was blocked by the user", 400 "Bad
        Request: chat not found", 500/502, 401; `description` replaces the text. "timeout"
        holds the request `hold` s (default `timeout_hold`, ended early by `stop()`) and then
        carries it out, like a slow Telegram that still delivers after the client gave up.
        """
        if error not in _ERRORS:
            raise ValueError(f"unknown error {error!r}; one of {sorted(_ERRORS)}")
        if times < 1:
            raise ValueError("times must be >= 1")
        self._rules.append(
            _FailRule(
                method=method.lower(),
                chat_id=chat_id,
                remaining=times,
                error=error,
                retry_after=retry_after,
                description=description,
                hold=self.timeout_hold if hold is None else hold,
                migrate_to_chat_id=migrate_to_chat_id,
            )
        )

    def block(self, chat_id: int) -> None:
        """The user blocked the bot: every send to the chat gets 403 until `unblock`."""
        self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        self._blocked.discard(chat_id)

    def add_chat(self, chat_id: int) -> None:
        """Make a chat known (for `strict_chats`), as if the user had written to the bot."""
        self._known_chats.add(chat_id)

    def add_file(self, content: bytes, *, file_path: str | None = None) -> str:
        """Store a file for getFile and the file URL; returns its file_id."""
        file_id = f"FILE{len(self._files) + 1:04d}"
        self._files[file_id] = (file_path or f"documents/file_{len(self._files)}.bin", content)
        return file_id

    # ------------------------------------------------------------------ readers

    def messages_to(self, chat_id: int) -> list[SentMessage]:
        return [message for message in self.sent if message.chat_id == chat_id]

    @property
    def pending_updates(self) -> int:
        return len(self._queue)

    def stored_message(self, chat_id: int, message_id: int) -> JSON | None:
        """The fake's current copy of a message (after edits), or None."""
        return self._messages.get((chat_id, message_id))

    def commands_for(self, scope: JSON | None = None, language_code: str = "") -> list[JSON]:
        return self.commands.get(self._commands_key(scope, language_code), [])

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - the test-facing API names its deadline so
    ) -> None:
        """Return as soon as `predicate()` holds (rechecked on every change); TimeoutError."""
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout} s")
            await self._wait_changed(remaining)

    async def wait_for_sent(
        self,
        chat_id: int | None = None,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - as wait_until
    ) -> list[SentMessage]:
        """Wait until at least `count` messages went to `chat_id` (any chat when None) and
        return them all; TimeoutError lists what was sent instead."""

        def selected() -> list[SentMessage]:
            return self.sent if chat_id is None else self.messages_to(chat_id)

        try:
            await self.wait_until(lambda: len(selected()) >= count, timeout)
        except TimeoutError:
            seen = [(m.chat_id, m.text) for m in self.sent]
            where = "in total" if chat_id is None else f"to chat {chat_id}"
            raise TimeoutError(
                f"expected {count} message(s) {where} within {timeout} s; sent: {seen}"
            ) from None
        return list(selected())

    # ------------------------------------------------------------------ updates

    def push_update(self, update: JSON) -> JSON:
        """Queue an update for getUpdates (an update_id is added when missing)."""
        if "update_id" not in update:
            update = {"update_id": next(self._update_ids), **update}
        self._queue.append(update)
        self._notify()
        return update

    def user(
        self,
        user_id: int,
        first_name: str = "Иван",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "ru",
    ) -> JSON:
        """A Telegram User object for a person."""
        user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name is not None:
            user["last_name"] = last_name
        if username is not None:
            user["username"] = username
        if language_code is not None:
            user["language_code"] = language_code
        return user

    @property
    def bot_user(self) -> JSON:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    def message(
        self,
        chat_id: int,
        text: str,
        *,
        user: JSON | int | None = None,
        reply_to: int | JSON | None = None,
        entities: list[JSON] | None = None,
    ) -> JSON:
        """An Update with a text message the user sent to the bot (not yet pushed)."""
        body: JSON = {"text": text}
        if entities:
            body["entities"] = entities
        return self._incoming(chat_id, body, user=user, reply_to=reply_to)

    def command(
        self,
        chat_id: int,
        command: str,
        payload: str | None = None,
        *,
        user: JSON | int | None = None,
    ) -> JSON:
        """An Update with "/start payload"-style text and its bot_command entity."""
        command = command if command.startswith("/") else f"/{command}"
        text = command if payload is None else f"{command} {payload}"
        entity = {"type": "bot_command", "offset": 0, "length": _utf16_len(command)}
        return self.message(chat_id, text, user=user, entities=[entity])

    def contact(
        self,
        chat_id: int,
        phone: str,
        *,
        user_id: int | EllipsisType | None = ...,
        from_id: int | None = None,
        first_name: str = "Иван",
        last_name: str | None = None,
    ) -> JSON:
        """An Update with a shared contact. `from_id` is the sender (default: the private
        chat's user); `user_id` is the contact's own Telegram id (default: the sender's, as
        with the request_contact button; pass another id to spoof, None to omit it)."""
        sender = from_id if from_id is not None else chat_id
        contact: JSON = {"phone_number": phone, "first_name": first_name}
        if last_name is not None:
            contact["last_name"] = last_name
        owner = sender if isinstance(user_id, EllipsisType) else user_id
        if owner is not None:
            contact["user_id"] = owner
        return self._incoming(chat_id, {"contact": contact}, user=sender)

    def callback_query(
        self,
        chat_id: int,
        data: str,
        *,
        message_id: int,
        from_id: int | None = None,
    ) -> JSON:
        """An Update for a press on an inline button of the bot's message `message_id`."""
        sender = from_id if from_id is not None else chat_id
        query_id = f"{self.bot_id}{next(self._query_ids):06d}"
        self._open_queries.add(query_id)
        stored = self._messages.get((chat_id, message_id))
        message = (
            dict(stored)
            if stored is not None
            else {
                "message_id": message_id,
                "date": self._now(),
                "chat": self._chat(chat_id),
                "from": self.bot_user,
                "text": "",
            }
        )
        query: JSON = {
            "id": query_id,
            "from": self.user(sender),
            "chat_instance": str(-(abs(chat_id) * 7919 + self.bot_id) % 10**18),
            "message": message,
            "data": data,
        }
        return {"update_id": next(self._update_ids), "callback_query": query}

    def my_chat_member(
        self,
        chat_id: int,
        old_status: str,
        new_status: str,
        *,
        from_id: int | None = None,
    ) -> JSON:
        """An Update telling the bot its status in the chat changed: in a private chat
        member → kicked is "the user blocked the bot", kicked → member "unblocked"."""
        sender = from_id if from_id is not None else chat_id
        change: JSON = {
            "chat": self._chat(chat_id),
            "from": self.user(sender),
            "date": self._now(),
            "old_chat_member": self._member(old_status),
            "new_chat_member": self._member(new_status),
        }
        self._known_chats.add(chat_id)
        return {"update_id": next(self._update_ids), "my_chat_member": change}

    # ------------------------------------------------------------------ webhook side

    async def post_webhook(
        self,
        url: str,
        update: JSON,
        secret_token: str | None = None,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - the HTTP client's total timeout
    ) -> WebhookDelivery:
        """POST one update to the bot's webhook as Telegram does (JSON body, the secret in
        X-Telegram-Bot-Api-Secret-Token). A method call in the reply is carried out."""
        if self._client is None:
            self._client = aiohttp.ClientSession()
        headers = {"Content-Type": "application/json"}
        if secret_token is not None:
            headers[SECRET_HEADER] = secret_token
        body = json.dumps(update, ensure_ascii=False).encode()
        async with self._client.post(
            url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            if response.content_type.startswith("multipart/"):
                fields: dict[str, str] = {}
                reader = aiohttp.MultipartReader(response.headers, response.content)
                while (part := await reader.next()) is not None:
                    if isinstance(part, aiohttp.BodyPartReader) and part.name:
                        fields[part.name] = await part.text()
                method = fields.pop("method", None)
                if method is None:
                    return WebhookDelivery(response.status, "")
                params = {key: decode_value(key, value) for key, value in fields.items()}
                reply = await self._call(method, params)
                return WebhookDelivery(response.status, "", method, reply.body)
            return WebhookDelivery(response.status, await response.text())

    async def deliver(self, update: JSON) -> WebhookDelivery:
        """POST an update to the registered webhook with the registered secret."""
        if not self.webhook.url:
            raise RuntimeError("no webhook is set")
        return await self.post_webhook(self.webhook.url, update, self.webhook.secret_token)

    # ------------------------------------------------------------------ HTTP

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        try:
            params = await read_params(request)
        except _ApiError as exc:
            return _Reply.error(exc.status, exc.description).response()
        if await self._pause(self.latency):
            return _Reply.error(502, "Bad Gateway").response()
        if request.match_info["token"] != self.token:
            self.requests[method] += 1
            return _Reply.error(401, "Unauthorized").response()
        reply = await self._call(method, params)
        return reply.response()

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        path = request.match_info["path"]
        for file_path, content in self._files.values():
            if file_path == path:
                return web.Response(body=content, content_type="application/octet-stream")
        return web.json_response(
            {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
        )

    async def _call(self, method: str, params: JSON) -> _Reply:
        """Run one authorised method call through injection, blocking, limits, the handler."""
        key = method.lower()
        self.requests[method] += 1
        self._notify()  # a test may be waiting for the request to arrive (it may be held)
        reply = await self._run(key, params)
        self.calls.append(ApiCall(method, params, reply.status, self.clock()))
        self._notify()
        return reply

    async def _run(self, key: str, params: JSON) -> _Reply:
        rule = self._take_rule(key, params)
        if rule is not None:
            if rule.error != "timeout":
                return self._injected(rule)
            if await self._pause(rule.hold):
                return _Reply.error(502, "Bad Gateway")
        handler = self._methods.get(key)
        if handler is None:
            return _Reply.error(404, "Not Found: method not found")
        try:
            self._check_chat(key, params)
            if key in _MESSAGE_METHODS:
                self._check_rate(_chat_id(params.get("chat_id")))
            return _Reply.ok(await handler(params))
        except _ApiError as exc:
            return _Reply.error(exc.status, exc.description, exc.parameters)

    def _take_rule(self, key: str, params: JSON) -> _FailRule | None:
        for rule in self._rules:
            if rule.method != key:
                continue
            if rule.chat_id is not None and str(rule.chat_id) != str(params.get("chat_id")):
                continue
            rule.remaining -= 1
            if rule.remaining <= 0:
                self._rules.remove(rule)
            return rule
        return None

    @staticmethod
    def _injected(rule: _FailRule) -> _Reply:
        if rule.error == "proxy_html":
            return _Reply(502, _PROXY_HTML)
        if rule.error == "retry_after":
            description = rule.description or f"Too Many Requests: retry after {rule.retry_after}"
            return _Reply.error(429, description, {"retry_after": rule.retry_after})
        status, default = _INJECTED[rule.error]
        parameters = (
            {"migrate_to_chat_id": rule.migrate_to_chat_id} if rule.error == "migrated" else None
        )
        return _Reply.error(status, rule.description or default, parameters)

    def _check_chat(self, key: str, params: JSON) -> None:
        if not (key.startswith("send") or key in _CHAT_METHODS) or "chat_id" not in params:
            return
        chat_id = _chat_id(params["chat_id"])
        if chat_id in self._blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        if self.strict_chats and chat_id not in self._known_chats:
            raise _ApiError(400, "Bad Request: chat not found")

    def _check_rate(self, chat_id: int) -> None:
        now = self.clock()
        horizon = now - 1.0
        windows: list[tuple[deque[float], int | None]] = [
            (self._bot_window, self.per_second),
            (self._chat_windows.setdefault(chat_id, deque()), self.per_chat_per_second),
        ]
        wait = 0.0
        for window, limit in windows:
            while window and window[0] <= horizon:
                window.popleft()
            if limit is not None and len(window) >= limit:
                wait = max(wait, window[0] + 1.0 - now)
        if wait > 0:
            self.rejected_429 += 1
            retry_after = self.rate_retry_after or max(1, math.ceil(wait))
            raise _ApiError(
                429,
                f"Too Many Requests: retry after {retry_after}",
                {"retry_after": retry_after},
            )
        for window, _ in windows:
            window.append(now)

    # ------------------------------------------------------------------ methods

    async def _get_me(self, params: JSON) -> JSON:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _harmless(self, params: JSON) -> bool:
        return True

    async def _send_message(self, params: JSON) -> JSON:
        chat_id = _chat_id(params.get("chat_id"))
        text = _check_text(params.get("text"))
        parse_mode = _check_parse_mode(params.get("parse_mode"))
        markup = _check_markup(params.get("reply_markup"))
        reply_to = self._reply_target(chat_id, params)
        message = self._outgoing(chat_id, {"text": text}, markup, reply_to)
        self._record_sent("sendMessage", chat_id, text, message, params, parse_mode, reply_to)
        return message

    async def _copy_message(self, params: JSON) -> JSON:
        chat_id = _chat_id(params.get("chat_id"))
        source = self._source(params, "copy")
        markup = _check_markup(params.get("reply_markup"))
        text = params.get("caption") or source.get("text") or source.get("caption")
        body: JSON = {"text": text} if isinstance(text, str) else {}
        if "contact" in source:
            body["contact"] = source["contact"]
        reply_to = self._reply_target(chat_id, params)
        message = self._outgoing(chat_id, body, markup, reply_to)
        self._record_sent(
            "copyMessage", chat_id, body.get("text"), message, params, None, reply_to
        )
        return {"message_id": message["message_id"]}

    async def _forward_message(self, params: JSON) -> JSON:
        chat_id = _chat_id(params.get("chat_id"))
        source = self._source(params, "forward")
        body = {k: v for k, v in source.items() if k in ("text", "entities", "contact")}
        sender = source.get("from") or self.bot_user
        body["forward_origin"] = {"type": "user", "date": source["date"], "sender_user": sender}
        message = self._outgoing(chat_id, body, None, None)
        self._record_sent("forwardMessage", chat_id, body.get("text"), message, params, None, None)
        return message

    async def _get_updates(self, params: JSON) -> list[JSON]:
        if self.webhook.url:
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _int(params.get("offset"), 0)
        limit = min(max(_int(params.get("limit"), 100), 1), 100)
        timeout = max(_int(params.get("timeout"), 0), 0)
        if isinstance(params.get("allowed_updates"), list):
            self._allowed_updates = list(params["allowed_updates"])
        self._acknowledge(offset)
        # Telegram ends an older long poll when a newer one arrives (one poller per token).
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()
        deadline = time.monotonic() + timeout
        while True:
            if generation != self._poll_generation:
                raise _ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            batch = self._deliverable(limit)
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0 or self._stopping.is_set():
                return batch
            await self._wait_changed(remaining)

    async def _set_webhook(self, params: JSON) -> bool:
        url = params.get("url") or ""
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_RE.fullmatch(str(secret)):
            raise _ApiError(400, "Bad Request: secret token contains unallowed characters")
        if url and not str(url).startswith(("http://", "https://")):
            raise _ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = list(allowed)
        self.webhook = WebhookState(
            url=str(url),
            secret_token=secret,
            drop_pending_updates=params.get("drop_pending_updates"),
            allowed_updates=list(allowed) if isinstance(allowed, list) else None,
            max_connections=params.get("max_connections"),
            ip_address=params.get("ip_address"),
        )
        if params.get("drop_pending_updates"):
            self._queue.clear()
        return True

    async def _delete_webhook(self, params: JSON) -> bool:
        self.webhook = WebhookState(drop_pending_updates=params.get("drop_pending_updates"))
        if params.get("drop_pending_updates"):
            self._queue.clear()
        return True

    async def _get_webhook_info(self, params: JSON) -> JSON:
        info: JSON = {
            "url": self.webhook.url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._queue),
        }
        if self.webhook.url:
            info["max_connections"] = self.webhook.max_connections or 40
            if self.webhook.ip_address:
                info["ip_address"] = self.webhook.ip_address
            if self.webhook.allowed_updates is not None:
                info["allowed_updates"] = self.webhook.allowed_updates
        return info

    async def _answer_callback_query(self, params: JSON) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._open_queries:
            raise _ApiError(
                400,
                "Bad Request: query is too old and response timeout expired "
                "or query ID is invalid",
            )
        self._open_queries.discard(query_id)
        self.callback_answers.append(
            CallbackAnswer(
                callback_query_id=query_id,
                text=params.get("text"),
                show_alert=bool(params.get("show_alert")),
                url=params.get("url"),
                cache_time=params.get("cache_time"),
                time=self.clock(),
            )
        )
        return True

    async def _edit_message_text(self, params: JSON) -> JSON | bool:
        text = _check_text(params.get("text"))
        _check_parse_mode(params.get("parse_mode"))
        markup = _check_markup(params.get("reply_markup"))
        return self._edit("editMessageText", params, text, markup)

    async def _edit_message_reply_markup(self, params: JSON) -> JSON | bool:
        markup = _check_markup(params.get("reply_markup"))
        return self._edit("editMessageReplyMarkup", params, None, markup)

    async def _send_chat_action(self, params: JSON) -> bool:
        chat_id = _chat_id(params.get("chat_id"))
        action = params.get("action")
        if not isinstance(action, str) or not action:
            raise _ApiError(400, "Bad Request: wrong parameter action in request")
        self.chat_actions.append((chat_id, action))
        return True

    async def _set_my_commands(self, params: JSON) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or not all(
            isinstance(c, dict) and c.get("command") and c.get("description") for c in commands
        ):
            raise _ApiError(400, "Bad Request: can't parse commands JSON object")
        key = self._commands_key(params.get("scope"), params.get("language_code") or "")
        self.commands[key] = commands
        return True

    async def _get_my_commands(self, params: JSON) -> list[JSON]:
        key = self._commands_key(params.get("scope"), params.get("language_code") or "")
        return self.commands.get(key, [])

    async def _delete_my_commands(self, params: JSON) -> bool:
        key = self._commands_key(params.get("scope"), params.get("language_code") or "")
        self.commands.pop(key, None)
        return True

    def _set_profile(self, name: str) -> Callable[[JSON], Awaitable[bool]]:
        async def setter(params: JSON) -> bool:
            self.bot_profile[name] = params.get(name)
            return True

        return setter

    async def _delete_message(self, params: JSON) -> bool:
        chat_id = _chat_id(params.get("chat_id"))
        message_id = _int(params.get("message_id"), 0)
        if self._messages.pop((chat_id, message_id), None) is None:
            raise _ApiError(400, "Bad Request: message to delete not found")
        self.deleted.append((chat_id, message_id))
        return True

    async def _get_file(self, params: JSON) -> JSON:
        file_id = str(params.get("file_id") or "")
        if file_id not in self._files:
            raise _ApiError(400, "Bad Request: invalid file_id")
        file_path, content = self._files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": f"U{file_id}",
            "file_size": len(content),
            "file_path": file_path,
        }

    # ------------------------------------------------------------------ internals

    def _notify(self) -> None:
        # Wake every waiter (long polls, wait_until); each rechecks its own condition.
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_changed(self, seconds: float) -> None:
        event = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    async def _pause(self, seconds: float) -> bool:
        """Sleep up to `seconds`, ending early on stop; True when the fake is stopping."""
        if seconds > 0 and not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    def _acknowledge(self, offset: int) -> None:
        if offset > 0:
            self._queue = [u for u in self._queue if u["update_id"] >= offset]
        elif offset < 0:
            self._queue = self._queue[offset:]

    def _deliverable(self, limit: int) -> list[JSON]:
        allowed = self._allowed_updates
        if allowed:
            keep = set(allowed)
            self._queue = [u for u in self._queue if _update_type(u) in keep]
        else:
            self._queue = [u for u in self._queue if _update_type(u) not in _NOT_BY_DEFAULT]
        return self._queue[:limit]

    @staticmethod
    def _commands_key(scope: Any, language_code: str) -> str:
        scope_key = json.dumps(scope, sort_keys=True) if scope else "default"
        return f"{scope_key}|{language_code}"

    @staticmethod
    def _now() -> int:
        return int(time.time())

    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def _chat(self, chat_id: int) -> JSON:
        if chat_id in self._chats:
            return self._chats[chat_id]
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "Иван"}
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return {"id": chat_id, "type": kind, "title": f"Chat {chat_id}"}

    def _member(self, status: str) -> JSON:
        member: JSON = {"status": status, "user": self.bot_user}
        if status == "kicked":
            member["until_date"] = 0
        elif status == "administrator":
            member.update(
                dict.fromkeys(
                    (
                        "can_be_edited",
                        "is_anonymous",
                        "can_manage_chat",
                        "can_delete_messages",
                        "can_manage_video_chats",
                        "can_restrict_members",
                        "can_promote_members",
                        "can_change_info",
                        "can_invite_users",
                        "can_post_stories",
                        "can_edit_stories",
                        "can_delete_stories",
                        "can_send_welcome_messages",
                    ),
                    False,
                )
            )
        elif status not in ("member", "left"):
            raise ValueError(f"unsupported member status {status!r}")
        return member

    def _incoming(
        self,
        chat_id: int,
        body: JSON,
        *,
        user: JSON | int | None,
        reply_to: int | JSON | None = None,
    ) -> JSON:
        if user is None:
            if chat_id <= 0:
                raise ValueError("a group message needs user=")
            user = chat_id
        sender = self.user(user) if isinstance(user, int) else user
        if chat_id > 0 and chat_id not in self._chats:
            chat: JSON = {"id": chat_id, "type": "private", "first_name": sender["first_name"]}
            if "username" in sender:
                chat["username"] = sender["username"]
            self._chats[chat_id] = chat
        self._known_chats.add(chat_id)
        message: JSON = {
            "message_id": self._next_message_id(chat_id),
            "from": sender,
            "chat": self._chat(chat_id),
            "date": self._now(),
            **body,
        }
        if reply_to is not None:
            target = (
                reply_to
                if isinstance(reply_to, dict)
                else self._messages.get((chat_id, reply_to))
                or {"message_id": reply_to, "date": self._now(), "chat": self._chat(chat_id)}
            )
            message["reply_to_message"] = target
        self._messages[(chat_id, message["message_id"])] = message
        return {"update_id": next(self._update_ids), "message": message}

    def _outgoing(
        self, chat_id: int, body: JSON, markup: JSON | None, reply_to: int | None
    ) -> JSON:
        message: JSON = {
            "message_id": self._next_message_id(chat_id),
            "from": self.bot_user,
            "chat": self._chat(chat_id),
            "date": self._now(),
            **body,
        }
        # Telegram echoes only inline keyboards back in the Message.
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        if reply_to is not None and (chat_id, reply_to) in self._messages:
            replied = dict(self._messages[(chat_id, reply_to)])
            replied.pop("reply_to_message", None)
            message["reply_to_message"] = replied
        self._messages[(chat_id, message["message_id"])] = message
        return message

    def _record_sent(
        self,
        method: str,
        chat_id: int,
        text: str | None,
        message: JSON,
        params: JSON,
        parse_mode: str | None,
        reply_to: int | None,
    ) -> None:
        markup = params.get("reply_markup")
        preview = params.get("link_preview_options")
        self.sent.append(
            SentMessage(
                chat_id=chat_id,
                text=text,
                message_id=message["message_id"],
                parse_mode=parse_mode,
                reply_markup=markup if isinstance(markup, dict) else None,
                reply_to_message_id=reply_to,
                link_preview_options=preview if isinstance(preview, dict) else None,
                method=method,
                time=self.clock(),
                params=params,
            )
        )

    def _reply_target(self, chat_id: int, params: JSON) -> int | None:
        reply = params.get("reply_parameters")
        allow_missing = bool(params.get("allow_sending_without_reply"))
        target: int | None = None
        if isinstance(reply, dict) and reply.get("message_id") is not None:
            target = _int(reply["message_id"], 0)
            allow_missing = allow_missing or bool(reply.get("allow_sending_without_reply"))
        elif params.get("reply_to_message_id") is not None:
            target = _int(params["reply_to_message_id"], 0)
        if target is not None and (chat_id, target) not in self._messages and not allow_missing:
            raise _ApiError(400, "Bad Request: message to be replied not found")
        return target

    def _source(self, params: JSON, verb: str) -> JSON:
        from_chat = _chat_id(params.get("from_chat_id"))
        message_id = _int(params.get("message_id"), 0)
        source = self._messages.get((from_chat, message_id))
        if source is None:
            raise _ApiError(400, f"Bad Request: message to {verb} not found")
        return source

    def _edit(
        self, method: str, params: JSON, text: str | None, markup: JSON | None
    ) -> JSON | bool:
        inline_id = params.get("inline_message_id")
        if inline_id:
            self.edits.append(
                EditedMessage(method, None, None, inline_id, text, markup, self.clock())
            )
            return True
        chat_id = _chat_id(params.get("chat_id"))
        message_id = _int(params.get("message_id"), 0)
        stored = self._messages.get((chat_id, message_id))
        if stored is None:
            raise _ApiError(400, "Bad Request: message to edit not found")
        if stored.get("from", {}).get("id") != self.bot_id:
            raise _ApiError(400, "Bad Request: message can't be edited")
        new_text = stored.get("text") if text is None else text
        # Editing without reply_markup removes the inline keyboard, as in Telegram.
        new_markup = markup if markup is not None and "inline_keyboard" in markup else None
        if new_text == stored.get("text") and new_markup == stored.get("reply_markup"):
            raise _ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a specified content and reply markup "
                "of the message",
            )
        updated = {**stored, "text": new_text, "edit_date": self._now()}
        updated.pop("reply_markup", None)
        if new_markup is not None:
            updated["reply_markup"] = new_markup
        self._messages[(chat_id, message_id)] = updated
        self.edits.append(
            EditedMessage(method, chat_id, message_id, None, text, markup, self.clock())
        )
        return updated
