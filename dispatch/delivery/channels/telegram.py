"""Telegram delivery: one message to one chat (plain text, or a Telegram text in HTML),
reported as an `Outcome`.

aiogram raises on every API error and never retries by itself; this channel turns each
exception into a value the worker stores (retry at T, reserve route, failed) and never
sleeps or raises, except for cancellation, which always propagates.

| what happened                                  | Outcome                                     |
| ---------------------------------------------- | ------------------------------------------- |
| message accepted                               | sent(provider_message_id=message_id)        |
| TelegramRetryAfter (429)                       | retry(RATE_LIMIT, retry_after, pause)       |
| TelegramForbiddenError (403: blocked, ...)     | blocked()                                   |
| TelegramBadRequest "chat not found", "user not | permanent(CHAT_NOT_FOUND)                   |
|   found", "PEER_ID_INVALID"; TelegramMigrate-  |                                             |
|   ToChat (the group became a supergroup)       |                                             |
| other TelegramBadRequest, TelegramEntityToo-   | permanent(BAD_REQUEST)                      |
|   Large                                        |                                             |
| TelegramUnauthorizedError (401: bad token)     | retry(AUTH, retry_after=300, pause)         |
| TelegramServerError (5xx), TelegramNetwork-    | retry(TRANSIENT)                            |
|   Error, TimeoutError, aiohttp.ClientError     |                                             |
| ClientDecodeError (not JSON: a proxy's page)   | retry(TRANSIENT)                            |
| anything else (404, 409, a bug, …)             | retry(TRANSIENT), type in reason, traceback |
|                                                |   logged                                    |
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Sequence

import aiohttp
from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions

from dispatch.delivery.channels.outcome import ErrorKind, Outcome

logger = logging.getLogger(__name__)

AUTH_RETRY_AFTER = 300.0
"""Seconds the whole bot pauses after 401: the token was revoked or mistyped, and hammering
the API with it helps nobody; an admin fixes the configuration meanwhile."""

# Descriptions Telegram uses (in various cases) when the chat id leads nowhere.
_CHAT_GONE = ("chat not found", "user not found", "peer_id_invalid")
_REASON_LIMIT = 500
# Any bot token ("<digits>:<secret>"), in case a message carries one that is not ours.
_TOKEN_RE = re.compile(r"\d{3,}:[A-Za-z0-9_-]{20,}")
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


class TelegramChannel:
    """Sends notifications through one aiogram `Bot` (its session decides the API server)."""

    name = "telegram"

    def __init__(self, bot: Bot) -> None:
        self._bot = bot
        self._username: str | None = None

    async def me(self) -> str:
        """The bot's username (for t.me deep links), read once with getMe and cached.

        Raises aiogram's exceptions: unlike `send`, there is no outcome to store here.
        """
        if self._username is None:
            user = await self._bot.get_me()
            if not user.username:
                raise RuntimeError("getMe returned a bot without a username")
            self._username = user.username
        return self._username

    async def send(
        self,
        chat_id: int,
        text: str,
        *,
        html: bool = False,
        reply_markup: InlineKeyboardMarkup | None = None,
        buttons: Sequence[tuple[str, str]] = (),
    ) -> Outcome:
        """Send `text` as plain text, or as HTML with `html` (a Telegram template, whose
        data Jinja escaped); no link preview; never raises. `buttons` (label, callback
        data) become an inline keyboard, one button per row."""
        if buttons and reply_markup is None:
            reply_markup = InlineKeyboardMarkup(
                inline_keyboard=[
                    [InlineKeyboardButton(text=label, callback_data=data)]
                    for label, data in buttons
                ]
            )
        try:
            message = await self._bot.send_message(
                chat_id=chat_id,
                text=text,
                # Explicit None overrides any parse_mode default of the Bot: plain texts
                # come from templates filled with ERP data, where "<" or "*" are text.
                parse_mode="HTML" if html else None,
                link_preview_options=_NO_PREVIEW,
                reply_markup=reply_markup,
            )
        except Exception as exc:  # every failure becomes a stored outcome
            outcome = self._outcome_of(exc)
            logger.warning(
                "telegram send to chat %s: %s (%s)", chat_id, outcome.kind.value, outcome.reason
            )
            return outcome
        logger.debug("telegram send to chat %s: message %s", chat_id, message.message_id)
        return Outcome.sent(provider_message_id=str(message.message_id))

    async def edit(
        self, chat_id: int, message_id: int, text: str, *, html: bool = False
    ) -> Outcome:
        """Replace the text of the bot's message `message_id` (the living order card);
        never raises. Telegram's "message is not modified" counts as done: the text is
        already what it should be."""
        try:
            await self._bot.edit_message_text(
                chat_id=chat_id,
                message_id=message_id,
                text=text,
                parse_mode="HTML" if html else None,
                link_preview_options=_NO_PREVIEW,
            )
        except TelegramBadRequest as exc:
            if "message is not modified" not in exc.message.lower():
                return self._edit_failed(chat_id, exc)
        except Exception as exc:  # every failure becomes a stored outcome
            return self._edit_failed(chat_id, exc)
        logger.debug("telegram edit in chat %s: message %s", chat_id, message_id)
        return Outcome.sent(provider_message_id=str(message_id))

    def _edit_failed(self, chat_id: int, exc: Exception) -> Outcome:
        outcome = self._outcome_of(exc)
        logger.warning(
            "telegram edit in chat %s: %s (%s)", chat_id, outcome.kind.value, outcome.reason
        )
        return outcome

    def _outcome_of(self, exc: Exception) -> Outcome:
        reason = self._describe(exc)
        if isinstance(exc, TelegramRetryAfter):
            return Outcome.retry(
                reason,
                ErrorKind.RATE_LIMIT,
                retry_after=float(exc.retry_after),
                pause_channel=True,
            )
        if isinstance(exc, TelegramForbiddenError):
            return Outcome.blocked(reason)
        if isinstance(exc, TelegramMigrateToChat):
            # The stored chat id is dead for good; the new one must be linked anew.
            return Outcome.permanent(reason, ErrorKind.CHAT_NOT_FOUND)
        if isinstance(exc, TelegramBadRequest):
            lowered = exc.message.lower()
            if any(marker in lowered for marker in _CHAT_GONE):
                return Outcome.permanent(reason, ErrorKind.CHAT_NOT_FOUND)
            return Outcome.permanent(reason, ErrorKind.BAD_REQUEST)
        if isinstance(exc, TelegramUnauthorizedError):
            return Outcome.retry(
                reason, ErrorKind.AUTH, retry_after=AUTH_RETRY_AFTER, pause_channel=True
            )
        if isinstance(exc, TelegramEntityTooLarge):
            return Outcome.permanent(reason, ErrorKind.BAD_REQUEST)
        if isinstance(exc, TelegramServerError | TelegramNetworkError):
            return Outcome.retry(reason, ErrorKind.TRANSIENT)
        if isinstance(exc, TimeoutError | aiohttp.ClientError):
            return Outcome.retry(f"{type(exc).__name__}: {reason}", ErrorKind.TRANSIENT)
        if isinstance(exc, ClientDecodeError):
            # Not JSON: typically a proxy's HTML error page in front of the API.
            return Outcome.retry(f"ClientDecodeError: {reason}", ErrorKind.TRANSIENT)
        # A 404 (wrong API base), a 409, a bug: try again later, with enough detail in the
        # log to find out which.
        logger.error("unexpected telegram error:\n%s", self._redact(_format_traceback(exc)))
        return Outcome.retry(f"unexpected {type(exc).__name__}: {reason}", ErrorKind.TRANSIENT)

    def _describe(self, exc: Exception) -> str:
        if isinstance(exc, TelegramAPIError):
            # aiogram's text without the "background on this error" link.
            text = exc.message
        elif isinstance(exc, ClientDecodeError):
            text = f"{exc.message}: {str(exc.data)[:200]}"
        else:
            text = str(exc)
        text = " ".join(self._redact(text).split()) or type(exc).__name__
        return text if len(text) <= _REASON_LIMIT else text[: _REASON_LIMIT - 1] + "…"

    def _redact(self, text: str) -> str:
        # aiohttp errors can quote the request URL, and the token is part of that URL.
        return _TOKEN_RE.sub("<token>", text.replace(self._bot.token, "<token>"))


def _format_traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
