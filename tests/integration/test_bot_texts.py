"""The bot's texts: every template renders, in Russian, with every outside value escaped
for Telegram's HTML parse mode (a client named `<b>` cannot format or forge a message)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dispatch.conversation.bot_texts import BotTexts
from dispatch.conversation.subscriptions import Linked
from storage.directory import ClientRef, ManagerRef
from storage.events import DocumentRef
from storage.statuses import ALL_STATUSES

EVIL = '<i>"Рога & копыта"</i>'
ESCAPED = "&lt;i&gt;&#34;Рога &amp; копыта&#34;&lt;/i&gt;"
WHEN = datetime(2026, 11, 27, 7, 15, tzinfo=UTC)
TEXTS = BotTexts()

CLIENT = ClientRef("C-<1>", EVIL, "M-7")
MANAGER = ManagerRef("M-7", EVIL, False)
ROW = SimpleNamespace(
    id=42,
    status="awaiting_confirmation",
    event_type="client_order.ready",
    recipient="client",
    client_id="C-<1>",
    channel="telegram",
    phone="+79161234567",
    attempts=1,
    reason=EVIL,
    text=EVIL,
    created_at=WHEN,
    event_pk=5,
)
DOCUMENTS = {5: DocumentRef(EVIL, EVIL)}
STEP = SimpleNamespace(at=WHEN, to_status="pending", actor=EVIL, reason=EVIL)

# Each template with a context that puts an outside value everywhere one can go.
CONTEXTS: dict[str, list[dict[str, Any]]] = {
    "welcome.html.j2": [{}],
    "linked.html.j2": [{"linked": Linked((CLIENT,), (MANAGER,))}],
    "deep_link_refused.html.j2": [{"reason": r} for r in ("expired", "taken", "unknown")],
    "start_linked.html.j2": [
        {"resumed": resumed, "clients": [CLIENT], "is_manager": is_manager}
        for resumed in (True, False)
        for is_manager in (True, False)
    ],
    "contact_unmatched.html.j2": [{"phone": EVIL}],
    "contact_not_own.html.j2": [{}],
    "contact_invalid.html.j2": [{}],
    "stopped.html.j2": [{}],
    "not_subscribed.html.j2": [{}],
    "help_client.html.j2": [{"subscribed": True}, {"subscribed": False}],
    "help_manager.html.j2": [{"manager": MANAGER}, {"manager": None}],
    "journal.html.j2": [
        {"rows": [ROW], "names": {"C-<1>": EVIL}, "documents": DOCUMENTS, "status": "failed"},
        {"rows": [ROW], "names": {"C-<1>": EVIL}, "documents": {}, "status": None},
        {"rows": [], "names": {}, "documents": {}, "status": None},
    ],
    "journal_bad_status.html.j2": [{"given": EVIL, "statuses": ["sent", "failed"]}],
    "status.html.j2": [
        {
            "entry": SimpleNamespace(notification=ROW, event_id=EVIL, history=[STEP]),
            "client_name": EVIL,
            "document": document,
        }
        for document in (DOCUMENTS[5], None)
    ],
    "usage.html.j2": [{"command": c} for c in ("status", "testsms")],
    "not_found.html.j2": [{"id": 7}],
    "action_result.html.j2": [
        {
            "id": 7,
            "ok": ok,
            "done": done,
            "current": "sent",
            "mode_refusal": refusal,
            "not_found": not_found,
        }
        for ok, done, refusal, not_found in (
            (True, "resent", False, False),
            (True, "sent_manually", False, False),
            (False, "resent", True, False),
            (False, "resent", False, True),
            (False, "sent_manually", False, False),
        )
    ],
    "balance.html.j2": [
        {"service": EVIL, "error": EVIL},
        *(
            {
                "service": EVIL,
                "error": None,
                "balance_money": EVIL,
                "price_money": EVIL if priced else None,
                "sms_left": 5 if priced else None,
                "threshold": 100,
                "state": state,
                "alert_active": True,
                "spent_money": EVIL,
                "days_text": "2,5",
            }
            for priced, state in ((True, "below"), (True, "ok"), (False, "unknown"), (True, "off"))
        ),
    ],
    "no_sms_service.html.j2": [{}],
    "test_sms.html.j2": [
        {
            "phone": EVIL,
            "service": EVIL,
            "sent": sent,
            "reason": EVIL,
            "id": 1,
            "segments": 1,
        }
        for sent in (True, False)
    ],
    "managers_only.html.j2": [{}],
    "test_sms_refused.html.j2": [
        {"reason": "admins_only"},
        {"reason": "country", "phone": EVIL, "countries": ["RU", EVIL]},
        {"reason": "daily_limit", "phone": EVIL, "limit": 10, "resets_at": WHEN},
        {"reason": "disabled"},
    ],
    "prompt.html.j2": [
        {"notification": SimpleNamespace(**{**vars(ROW), "status": status}), "client_name": EVIL}
        | {"result": None}
        for status in ("awaiting_confirmation", "not_sent", "sent")
    ],
    "prompt_result.html.j2": [
        {"status": status, "manager": MANAGER}
        for status in ("sent", "test", "cancelled", "sent_manually", "failed")
    ],
    "chat_to_manager.html.j2": [
        {"client": CLIENT, "sender_name": EVIL, "text": EVIL, "has_media": False},
        {"client": CLIENT, "sender_name": "", "text": None, "has_media": True},
    ],
    "chat_to_client.html.j2": [{"manager": MANAGER, "text": EVIL}],
    "auto_reply.html.j2": [{"text": EVIL}],
    "chat_reply_failed.html.j2": [{}],
    "chat_manager_hint.html.j2": [{}],
    "desk_link.html.j2": [{"url": EVIL, "minutes": 10}],
}

# The tags Telegram's HTML parse mode knows (and we use).
_TAG = re.compile(r"</?([a-z]+)[^>]*>")
_ALLOWED_TAGS = {"b", "i", "code", "blockquote"}


def test_every_bot_template_is_covered_here() -> None:
    folder = Path(__file__).resolve().parents[2] / "templates" / "bot"
    html = {path.name for path in folder.glob("*.html.j2")}
    assert html == set(CONTEXTS)


@pytest.mark.parametrize(
    ("name", "context"),
    [(name, context) for name, contexts in CONTEXTS.items() for context in contexts],
)
def test_outside_values_are_escaped(name: str, context: dict[str, Any]) -> None:
    text = TEXTS.render(name, **context)

    assert text.strip()
    assert len(text) <= 4096
    assert EVIL not in text
    assert set(_TAG.findall(text)) <= _ALLOWED_TAGS, text
    assert re.search("[а-яА-ЯёЁ]", text), "bot texts are Russian"
    if any(EVIL in str(value) for value in _values(context)):
        assert ESCAPED in text or "&lt;i&gt;" in text


def _values(context: dict[str, Any]) -> list[Any]:
    found: list[Any] = []
    for value in context.values():
        if isinstance(value, SimpleNamespace):
            found.extend(vars(value).values())
        elif isinstance(value, list | tuple):
            found.extend(value)
        else:
            found.append(value)
    return found


def test_labels_and_status_names() -> None:
    for label in (
        "button_share_phone",
        "button_send",
        "button_cancel",
        "button_sent_manually",
        "answer_not_manager",
        "answer_not_yours",
        "answer_done_send",
        "answer_done_cancel",
        "answer_done_manual",
        "answer_mode_off",
        "answer_unknown_button",
    ):
        assert 0 < len(TEXTS.label(label)) <= 64
    assert "{status}" in TEXTS.label("answer_already")
    assert set(TEXTS.statuses) == set(ALL_STATUSES)
