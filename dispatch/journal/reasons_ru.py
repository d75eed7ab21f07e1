"""The journal's history reasons in Russian, for the bot's `/status`.

The journal stores reasons in English: they are the API's and the logs' language, and
operators grep them. A manager reads them in the bot, inside Russian text, so the bot shows
this translation. Reasons are built from parts (a route, then `; `, then what happened;
`will retry in 30 s: ` before a provider's answer), so a rule that matches a prefix
translates the rest again. What no rule knows (a provider's own message, an admin's note)
is shown as it is: a wrong guess would be worse than English.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["reason_ru"]

# Reasons nest at most a few levels (a retry of a Telegram failure on the reserve route);
# the bound only keeps a pathological text from recursing without end.
_MAX_DEPTH = 8

_WHO = {"client": "клиент", "manager": "менеджер"}
_WHOSE = {"client": "клиента", "manager": "менеджера"}

# Whole reasons (or parts between separators) that carry no values.
_PHRASES: dict[str, str] = {
    "accepted": "принято к отправке",
    "the reserve route is off": "резервный канал выключен",
    "reserve route sms": "резервный канал — SMS",
    "service is sms": "канал отправки — SMS",
    "no SMS service is configured": "сервис SMS не настроен",
    "no Telegram bot is configured": "бот Telegram не настроен",
    "the user blocked the bot": "пользователь заблокировал бота",
    "Forbidden: bot was blocked by the user": "пользователь заблокировал бота",
    "Forbidden: user is deactivated": "аккаунт пользователя удалён",
    "Bad Request: chat not found": "чат не найден",
    "per-chat rate limit": "ограничение частоты сообщений в чат",
    "Telegram bot rate limit": "ограничение частоты сообщений бота",
    "lease expired; claimed again": "обработка прервалась; взято в работу снова",
    "released at shutdown": "возвращено в очередь при остановке сервиса",
    "confirmed; notify mode is test: nothing is sent": (
        "подтверждено; режим «тест»: ничего не отправляется"
    ),
    "confirmed for sending": "подтверждено к отправке",
    "confirmation requested before sending": "перед отправкой нужно подтверждение",
    "would await confirmation": "ждало бы подтверждения",
    "cancelled instead of confirmed": "отменено вместо подтверждения",
    "queued again by hand": "снова поставлено в очередь вручную",
    "marked as sent manually": "отмечено как отправленное вручную",
    "cancelled by hand": "отменено вручную",
    "from the Telegram bot": "из бота Telegram",
    "/resend in Telegram": "/resend в Telegram",
    "/sent in Telegram": "/sent в Telegram",
    "quiet hours are over": "тихие часы закончились",
    "sent now by hand, before the quiet hours end": (
        "отправлено вручную сейчас, не дожидаясь конца тихих часов"
    ),
    "delivered to the handset": "доставлено на телефон",
    "not delivered": "не доставлено",
    "the client has no responsible manager": "у клиента нет ответственного менеджера",
    "client opted out of this notification; the event is tracked by the manager": (
        "клиент отключил это уведомление; событие отслеживает менеджер"
    ),
    "client opted out of this notification (would be not_sent)": (
        "клиент отключил это уведомление (было бы «не отправлено»)"
    ),
    "insufficient funds": "недостаточно средств",
    "credentials or IP refused": "логин, пароль или IP-адрес отклонены",
    "rate limit": "превышена частота запросов",
    "unparseable reply": "непонятный ответ сервиса",
    "rejected": "отклонено",
    "Bad Request: message to edit not found": "сообщение для изменения не найдено",
    "Bad Request: message can't be edited": "сообщение больше нельзя изменить",
}

Translate = Callable[[str], str]
Rule = tuple[re.Pattern[str], Callable[[re.Match[str], Translate], str]]


def _attempts(count: str) -> str:
    n = int(count)
    if n % 10 == 1 and n % 100 != 11:
        return f"{n} попытки"  # «после 1 попытки», «после 21 попытки»
    return f"{n} попыток"


# Reasons with values, tried in order on a whole reason (or part); `again` translates a
# nested reason (what a retry, a failure or a prefix says after its colon).
_RULES: tuple[Rule, ...] = (
    (
        re.compile(r"(client|manager) is subscribed to the bot"),
        lambda m, again: f"{_WHO[m[1]]} подписан на бота",
    ),
    (
        re.compile(r"(client|manager) is not subscribed to the bot"),
        lambda m, again: f"{_WHO[m[1]]} не подписан на бота",
    ),
    (
        re.compile(r"the (client|manager) has no phone number"),
        lambda m, again: f"у {_WHOSE[m[1]]} нет номера телефона",
    ),
    (
        re.compile(r"the (client|manager) has no usable Telegram chat"),
        lambda m, again: f"у {_WHOSE[m[1]]} нет доступного чата в Telegram",
    ),
    (
        re.compile(r"edited the order card \(message (\d+)\)"),
        lambda m, again: f"карточка заказа изменена (сообщение {m[1]})",
    ),
    (
        re.compile(r"sent a new order card \(message (\d+)\)"),
        lambda m, again: f"отправлена новая карточка заказа (сообщение {m[1]})",
    ),
    (
        re.compile(r"the order card \(message (\d+)\) is older than 48 h"),
        lambda m, again: f"карточка заказа (сообщение {m[1]}) старше 48 ч",
    ),
    (
        re.compile(r"the order card \(message (\d+)\) could not be edited: (.+)", re.S),
        lambda m, again: f"карточку заказа (сообщение {m[1]}) изменить не удалось: {again(m[2])}",
    ),
    (
        re.compile(r"Telegram failed: (.+)", re.S),
        lambda m, again: f"Telegram не доставил: {again(m[1])}",
    ),
    (
        re.compile(r"will retry in (\d+) s: (.+)", re.S),
        lambda m, again: f"повтор через {m[1]} с: {again(m[2])}",
    ),
    (
        re.compile(r"deferred ([\d.]+) s: (.+)", re.S),
        lambda m, again: f"отложено на {m[1]} с: {again(m[2])}",
    ),
    (
        re.compile(r"gave up after (\d+) attempts"),
        lambda m, again: f"попытки прекращены после {_attempts(m[1])}",
    ),
    (
        re.compile(r"gave up: the next try would be more than (\d+) min after queueing"),
        lambda m, again: (
            f"попытки прекращены: следующая была бы позже {m[1]} мин после постановки в очередь"
        ),
    ),
    (
        re.compile(r"quiet hours (\S+) \(([^)]+)\): (would be )?held until (\S+ \S+) local time"),
        lambda m, again: (
            f"тихие часы {m[1]} ({m[2]}): {'ждало бы' if m[3] else 'ждёт'} до {m[4]}"
            " по местному времени"
        ),
    ),
    (re.compile(r"last error: (.+)", re.S), lambda m, again: f"последняя ошибка: {again(m[1])}"),
    (re.compile(r"last: (.+)", re.S), lambda m, again: f"последняя причина: {again(m[1])}"),
    (
        re.compile(r"would be skipped: (.+)", re.S),
        lambda m, again: f"было бы пропущено: {again(m[1])}",
    ),
    (
        re.compile(r"Telegram paused: (.+)", re.S),
        lambda m, again: f"Telegram на паузе: {again(m[1])}",
    ),
    (
        re.compile(r"SMS service (\S+) paused: (.+)", re.S),
        lambda m, again: f"сервис SMS {m[1]} на паузе: {again(m[2])}",
    ),
    (re.compile(r"(\S+) rate limit"), lambda m, again: f"ограничение частоты {m[1]}"),
    (
        # Telegram's own answer to a flood (HTTP 429), the one provider text worth knowing.
        re.compile(r"Too Many Requests: retry after (\d+)"),
        lambda m, again: f"слишком много запросов, повтор через {m[1]} с",
    ),
    (
        re.compile(r"not confirmed within (\d+) h: cancelled by the scheduler"),
        lambda m, again: f"не подтверждено за {m[1]} ч: отменено автоматически",
    ),
    (
        re.compile(r"test SMS requested by (.+)", re.S),
        lambda m, again: f"тестовое SMS, запросил {m[1]}",
    ),
    (
        re.compile(r"responsible manager (.+) is unknown", re.S),
        lambda m, again: f"ответственный менеджер {m[1]} не найден в справочнике",
    ),
    (
        # The renderer's own message names a line and a variable: kept for whoever fixes it.
        re.compile(r"template error: (.+)", re.S),
        lambda m, again: f"ошибка шаблона: {m[1]}",
    ),
    (
        re.compile(r"(\S+): HTTP (\d+): (.+)", re.S),
        lambda m, again: f"{m[1]}: HTTP {m[2]}: {again(m[3])}",
    ),
    (
        re.compile(r"(\S+): reply without .+", re.S),
        lambda m, again: f"{m[1]}: в ответе сервиса нет номера сообщения",
    ),
    (
        re.compile(r"([^:;]+): (unparseable reply|rejected)"),
        lambda m, again: f"{m[1]}: {_PHRASES[m[2]]}",
    ),
)

# Where a composed reason joins its parts, and how the Russian joins them.
_SEPARATORS = (("; ", "; "), (", but ", ", но "))


def reason_ru(reason: str | None) -> str:
    """The Russian text of a history reason; an unknown one comes back unchanged."""
    if not reason:
        return ""
    return _translate(reason.strip(), 0)


def _translate(text: str, depth: int) -> str:
    if depth > _MAX_DEPTH:
        return text
    known = _PHRASES.get(text)
    if known is not None:
        return known

    def again(part: str) -> str:
        return _translate(part, depth + 1)

    for pattern, build in _RULES:
        match = pattern.fullmatch(text)
        if match is not None:
            return build(match, again)
    for separator, joined in _SEPARATORS:
        head, found, tail = text.partition(separator)
        if found:
            return again(head) + joined + again(tail)
    return text
