"""The history reasons a manager reads in `/status`, in Russian.

Scenario: whatever the journal recorded about a notification — the route the planner took,
a Telegram failure and the switch to SMS, a retry, giving up, a manager's or the
scheduler's action, a provider's receipt — the bot shows it in Russian. The reasons come
from the code that writes them: produced by the real functions where they are functions,
and checked to still be in their source file where they are literals (so a reworded English
reason fails here instead of quietly reaching managers in English). A reason no rule knows,
such as a provider's own words or an admin's note, is shown unchanged.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dispatch.config import NotifySettings
from dispatch.delivery.channels.outcome import Outcome
from dispatch.delivery.channels.sms._http import HttpReply, outcome_for_http_status
from dispatch.delivery.retry import RetryPolicy
from dispatch.intake.planner import Recipient, choose_route, plan_one
from dispatch.journal.reasons_ru import reason_ru

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 27, 7, 15, tzinfo=UTC)

# Latin words that may stay in a Russian reason: names, not English.
NAMES = {"SMS", "Telegram", "HTTP", "IP", "smsc", "main", "resend", "sent", "C", "M"}
# Who did it, as the journal names actors (`manager:M-7`): an identifier, not a word.
ACTOR = re.compile(r"\b(manager|admin|cli):\S*")


def english_left(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z]+", ACTOR.sub("", text))) - NAMES


def recipient(kind: str, *, phone: str | None = "+79161234567", chats: int = 1) -> Recipient:
    return Recipient(kind, "C-1" if kind == "client" else "M-7", phone, [42] * chats)  # type: ignore[arg-type]


def route_reasons() -> list[str]:
    """Every reason `choose_route` gives, with the worker's `telegram_unusable` wordings."""
    reasons = []
    for kind in ("client", "manager"):
        for notify in (
            NotifySettings(),
            NotifySettings(reserve="none"),
            NotifySettings(service="sms"),
        ):
            for who in (recipient(kind), recipient(kind, chats=0), recipient(kind, phone=None)):
                for sms_available in (True, False):
                    for unusable in (
                        None,
                        "no Telegram bot is configured",
                        f"the {kind} has no usable Telegram chat",
                        f"Telegram failed: {Outcome.blocked().reason}",
                        "Telegram failed: Forbidden: bot was blocked by the user",
                    ):
                        route = choose_route(
                            notify, who, sms_available=sms_available, telegram_unusable=unusable
                        )
                        reasons.append(route.reason)
    return sorted(set(reasons))


def planned_reasons() -> list[str]:
    """The first history row of a notification in each mode and case of the planner."""
    reasons = []
    for mode in ("test", "live"):
        for opted_out in (False, True):
            for confirm in (False, True):
                for who in (recipient("client"), recipient("client", chats=0, phone=None)):
                    planned = plan_one(
                        mode=mode,  # type: ignore[arg-type]
                        notify=NotifySettings(),
                        recipient=who,
                        client_id="C-1",
                        manager_id="M-7",
                        render=lambda: "Заказ №ЗК-1 готов к выдаче.",
                        opted_out=opted_out,
                        confirm=confirm,
                        sms_available=True,
                        now=NOW,
                    )
                    assert planned.reason is not None
                    reasons.append(planned.reason)
    return sorted(set(reasons))


def retry_reasons() -> list[str]:
    policy = RetryPolicy(max_attempts=3, max_age=timedelta(minutes=30))
    tries = policy.gives_up(attempts=3, queued_at=NOW, retry_at=NOW)
    age = policy.gives_up(attempts=1, queued_at=NOW, retry_at=NOW + timedelta(hours=1))
    assert tries is not None and age is not None
    refusals = [
        outcome_for_http_status(HttpReply(status, {}, b""), "smsc").reason
        for status in (401, 402, 429, 200)
    ]
    return [
        tries,
        age,
        f"{tries}; last error: {refusals[1]}",
        f"{age}; last: Telegram bot rate limit",
        *(f"will retry in 30 s: {refusal}" for refusal in refusals),
        "deferred 12.5 s: per-chat rate limit",
        "deferred 3.0 s: Telegram paused: Too Many Requests: retry after 5",
        f"deferred 60.0 s: SMS service main paused: {refusals[1]}",
        "deferred 1.0 s: main rate limit",
        Outcome.sent("1").reason,
    ]


# Literal reasons: (file that writes it, the reason as written there).
LITERALS = [
    ("dispatch/journal/actions.py", "marked as sent manually"),
    ("dispatch/journal/actions.py", "cancelled by hand"),
    ("dispatch/journal/actions.py", "confirmed; notify mode is test: nothing is sent"),
    ("dispatch/journal/actions.py", "confirmed for sending"),
    ("dispatch/journal/actions.py", "cancelled instead of confirmed"),
    ("dispatch/journal/actions.py", "queued again by hand"),
    ("dispatch/journal/manager_prompts.py", "from the Telegram bot"),
    ("handlers/telegram/manager.py", "/resend in Telegram"),
    ("handlers/telegram/manager.py", "/sent in Telegram"),
    ("dispatch/delivery/worker.py", "released at shutdown"),
    ("storage/queue.py", "lease expired; claimed again"),
    ("dispatch/delivery/receipts.py", "delivered to the handset"),
    ("dispatch/delivery/receipts.py", "not delivered"),
    ("dispatch/intake/planner.py", "the client has no responsible manager"),
]
# f-string reasons: (file, the literal part in the source, a reason as it is written).
FORMATTED = [
    (
        "dispatch/ops/housekeeping.py",
        "h: cancelled by the scheduler",
        "not confirmed within 72 h: cancelled by the scheduler",
    ),
    ("dispatch/ops/sms_tools.py", "test SMS requested by ", "test SMS requested by manager:M-7"),
    ("dispatch/intake/ingest.py", "is unknown", "responsible manager 'M-9' is unknown"),
]


def written_reasons() -> list[str]:
    return [
        *route_reasons(),
        *planned_reasons(),
        *retry_reasons(),
        *(reason for _, reason in LITERALS),
        *(reason for *_, reason in FORMATTED),
    ]


@pytest.mark.parametrize(
    ("path", "literal"), [(p, r) for p, r in LITERALS] + [(p, r) for p, r, _ in FORMATTED]
)
def test_the_literal_reasons_are_still_written_by_the_code(path: str, literal: str) -> None:
    assert literal in (REPO / path).read_text(encoding="utf-8")


@pytest.mark.parametrize("reason", written_reasons())
def test_every_reason_the_code_writes_reads_in_russian(reason: str) -> None:
    russian = reason_ru(reason)
    assert re.search("[а-яё]", russian), russian
    assert not english_left(russian), (reason, russian)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("client is subscribed to the bot", "клиент подписан на бота"),
        (
            "Telegram failed: Forbidden: bot was blocked by the user; reserve route sms",
            "Telegram не доставил: пользователь заблокировал бота; резервный канал — SMS",
        ),
        (
            "would be skipped: manager is not subscribed to the bot; reserve route sms, "
            "but the manager has no phone number",
            "было бы пропущено: менеджер не подписан на бота; резервный канал — SMS, "
            "но у менеджера нет номера телефона",
        ),
        (
            "gave up after 8 attempts; last error: smsc: HTTP 402: insufficient funds",
            "попытки прекращены после 8 попыток; последняя ошибка: smsc: HTTP 402: "
            "недостаточно средств",
        ),
        ("gave up after 1 attempts", "попытки прекращены после 1 попытки"),
        ("accepted", "принято к отправке"),
    ],
)
def test_what_a_manager_reads(reason: str, expected: str) -> None:
    assert reason_ru(reason) == expected


@pytest.mark.parametrize(
    "reason",
    [
        "http 400 invalid_phone: номер не обслуживается",
        "Bad Request: message is too long",
        "клиент просил не беспокоить",
        "TimeoutError: ",
    ],
)
def test_unknown_reasons_are_shown_as_they_are(reason: str) -> None:
    assert reason_ru(reason) == reason.strip()


def test_a_partly_known_reason_keeps_the_unknown_part() -> None:
    assert reason_ru("will retry in 4 s: http 503 busy: try later") == (
        "повтор через 4 с: http 503 busy: try later"
    )
    assert reason_ru(None) == "" and reason_ru("") == ""
