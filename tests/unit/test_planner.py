"""Planning rules: the seed's flags × the client's choice × the mode × the route."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dispatch.config import EventTypeSettings, NotifySettings
from dispatch.intake.planner import (
    PlannedNotification,
    Recipient,
    choose_route,
    plan_notifications,
)
from dispatch.render.renderer import RenderError

NOW = datetime(2026, 11, 27, 7, 15, tzinfo=UTC)
SUBSCRIBED = Recipient(kind="client", id="C-1", phone="+79161234567", chat_ids=[42])
UNSUBSCRIBED = Recipient(kind="client", id="C-1", phone="+79161234567", chat_ids=[])
NO_PHONE = Recipient(kind="client", id="C-1", phone=None, chat_ids=[])
MANAGER = Recipient(kind="manager", id="M-7", phone="+79031234567", chat_ids=[])


def fail() -> str:
    raise RenderError("template 'x' line 1: 'document' has no attribute 'number'")


def plan(
    *,
    mode: str = "live",
    client: Recipient = SUBSCRIBED,
    client_sends: bool = True,
    manager: Recipient | None = MANAGER,
    sms: bool = True,
    notify: NotifySettings | None = None,
    render_client=lambda: "Заказ ЗК-1 готов к выдаче",
    **flags: bool,
) -> list[PlannedNotification]:
    return plan_notifications(
        mode=mode,  # type: ignore[arg-type]
        notify=notify or NotifySettings(mode="live"),
        type_settings=EventTypeSettings(**flags),
        client=client,
        client_sends=client_sends,
        manager=manager,
        manager_problem=None,
        render_client=render_client,
        render_manager=lambda: "Клиент ООО Ромашка: заказ ЗК-1 готов",
        sms_available=sms,
        now=NOW,
    )


def test_off_mode_creates_nothing() -> None:
    assert plan(mode="off", send_to_manager=True) == []


def test_subscribed_client_goes_by_telegram_and_is_due_now() -> None:
    [note] = plan()
    assert (note.recipient, note.channel, note.status) == ("client", "telegram", "pending")
    assert note.next_attempt_at == NOW
    assert note.encoding == "ucs2" and note.segments == 1 and note.units == 25


def test_unsubscribed_client_takes_the_sms_reserve() -> None:
    [note] = plan(client=UNSUBSCRIBED)
    assert (note.channel, note.status) == ("sms", "pending")
    assert "reserve" in (note.reason or "")


def test_reserve_none_without_a_link_is_skipped_with_the_reason() -> None:
    [note] = plan(client=UNSUBSCRIBED, notify=NotifySettings(mode="live", reserve="none"))
    assert (note.channel, note.status) == (None, "skipped")
    assert "reserve route is off" in (note.reason or "")


def test_no_phone_and_no_chat_is_skipped() -> None:
    [note] = plan(client=NO_PHONE)
    assert note.status == "skipped"
    assert "no phone" in (note.reason or "")


def test_sms_route_without_any_configured_provider_is_skipped() -> None:
    [note] = plan(client=UNSUBSCRIBED, sms=False)
    assert note.status == "skipped"
    assert "no SMS service" in (note.reason or "")


def test_service_sms_ignores_telegram_links() -> None:
    [note] = plan(notify=NotifySettings(mode="live", service="sms"))
    assert note.channel == "sms"


def test_test_mode_renders_with_status_test_and_the_would_be_route() -> None:
    [note] = plan(mode="test", client=UNSUBSCRIBED)
    assert (note.status, note.channel) == ("test", "sms")
    assert note.next_attempt_at is None
    assert note.text == "Заказ ЗК-1 готов к выдаче"


def test_test_mode_says_when_live_mode_would_skip_and_still_counts_the_segments() -> None:
    [note] = plan(mode="test", client=UNSUBSCRIBED, sms=False)
    assert (note.status, note.channel) == ("test", None)
    assert (note.reason or "").startswith("would be skipped: ")
    assert "no SMS service" in (note.reason or "")
    assert (note.text, note.encoding, note.segments) == ("Заказ ЗК-1 готов к выдаче", "ucs2", 1)

    [note] = plan(mode="test", client=UNSUBSCRIBED, notify=NotifySettings(reserve="none"))
    assert (note.status, note.channel) == ("test", None)
    reason = "would be skipped: client is not subscribed to the bot; the reserve route is off"
    assert note.reason == reason


def test_confirm_before_send_awaits_confirmation_for_the_client_only() -> None:
    client, manager = plan(confirm_before_send=True, send_to_manager=True)
    assert client.status == "awaiting_confirmation"
    assert client.channel == "telegram"
    assert manager.status == "pending"


def test_opted_out_client_gets_nothing_unless_tracked_by_manager() -> None:
    assert plan(client_sends=False) == []
    [note] = plan(client_sends=False, tracked_by_manager=True)
    assert note.status == "not_sent"
    assert note.text == "Заказ ЗК-1 готов к выдаче"


def test_send_to_client_off_sends_only_to_the_manager() -> None:
    [note] = plan(send_to_client=False, send_to_manager=True)
    assert (note.recipient, note.manager_id, note.channel) == ("manager", "M-7", "sms")


def test_manager_unknown_is_a_skipped_row_not_a_silence() -> None:
    client, manager = plan(send_to_manager=True, manager=None)
    assert client.status == "pending"
    assert (manager.recipient, manager.status) == ("manager", "skipped")


def test_render_error_is_a_failed_notification_with_the_reason() -> None:
    [note] = plan(render_client=fail)
    assert note.status == "failed"
    assert note.text is None
    assert "template error" in (note.reason or "")
    assert "document" in (note.reason or "")


@pytest.mark.parametrize(
    ("service", "reserve", "recipient", "sms", "expected"),
    [
        ("telegram", "sms", SUBSCRIBED, True, "telegram"),
        ("telegram", "sms", UNSUBSCRIBED, True, "sms"),
        ("telegram", "none", UNSUBSCRIBED, True, None),
        ("telegram", "sms", NO_PHONE, True, None),
        ("sms", "sms", SUBSCRIBED, True, "sms"),
        ("sms", "none", UNSUBSCRIBED, True, "sms"),
        ("sms", "sms", UNSUBSCRIBED, False, None),
    ],
)
def test_route_table(
    service: str, reserve: str, recipient: Recipient, sms: bool, expected: str | None
) -> None:
    notify = NotifySettings(service=service, reserve=reserve)  # type: ignore[arg-type]
    assert choose_route(notify, recipient, sms_available=sms).channel == expected
