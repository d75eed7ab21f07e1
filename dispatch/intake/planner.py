"""Who gets what, by which route: the seed's flags × the client's override × the mode.

Pure functions: the caller loads the facts (settings, the client's choice, linked chats) and
stores the result, so every rule here is testable without a database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from dispatch.config import EventTypeSettings, NotifyMode, NotifySettings
from dispatch.intake.quiet_hours import Hold
from dispatch.render.renderer import RenderError
from dispatch.render.segments import segment_text
from storage.statuses import Status

logger = logging.getLogger(__name__)

RecipientKind = Literal["client", "manager"]
Channel = Literal["telegram", "sms"]


@dataclass(frozen=True, slots=True)
class Recipient:
    kind: RecipientKind
    id: str
    phone: str | None
    chat_ids: Sequence[int]
    """Linked chats that are neither stopped nor blocked."""


@dataclass(frozen=True, slots=True)
class Route:
    channel: Channel | None
    reason: str
    """Why this route (or why none): kept in the status history."""


@dataclass(frozen=True, slots=True)
class PlannedNotification:
    recipient: RecipientKind
    client_id: str
    manager_id: str | None
    channel: Channel | None
    phone: str | None
    status: Status
    reason: str | None
    text: str | None
    encoding: str | None = None
    units: int | None = None
    segments: int | None = None
    next_attempt_at: datetime | None = None
    telegram_text: str | None = None
    """The type's Telegram text (HTML), when it has one: sent instead of `text` by Telegram."""

    def as_row(self) -> dict[str, object]:
        return {
            "recipient": self.recipient,
            "client_id": self.client_id,
            "manager_id": self.manager_id,
            "channel": self.channel,
            "phone": self.phone,
            "status": self.status.value,
            "reason": self.reason,
            "text": self.text,
            "telegram_text": self.telegram_text,
            "encoding": self.encoding,
            "units": self.units,
            "segments": self.segments,
            "next_attempt_at": self.next_attempt_at,
            "queued_at": self.next_attempt_at,
        }


def choose_route(
    notify: NotifySettings,
    recipient: Recipient,
    *,
    sms_available: bool,
    telegram_unusable: str | None = None,
) -> Route:
    """Telegram when the recipient has a usable chat, else the reserve SMS route, else none.

    The one statement of the rule: the planner asks it when the event arrives, the delivery
    worker again at every attempt. `telegram_unusable` says why Telegram is out although the
    recipient has chats (the worker: no bot configured, or Telegram failed for this message);
    it also replaces the planner's wording when there are none.
    """
    who = recipient.kind
    if notify.service == "telegram":
        if recipient.chat_ids and telegram_unusable is None:
            return Route("telegram", f"{who} is subscribed to the bot")
        why = telegram_unusable or f"{who} is not subscribed to the bot"
        if notify.reserve == "none":
            return Route(None, f"{why}; the reserve route is off")
        why_reserve = f"{why}; reserve route sms"
    else:
        why_reserve = "service is sms"
    if recipient.phone is None:
        return Route(None, f"{why_reserve}, but the {who} has no phone number")
    if not sms_available:
        return Route(None, f"{why_reserve}, but no SMS service is configured")
    return Route("sms", why_reserve)


Renderer = Callable[[], str]
"""Renders one recipient's text or raises RenderError."""


def _render(render: Renderer) -> tuple[str | None, str | None]:
    try:
        return render(), None
    except RenderError as exc:
        return None, f"template error: {exc}"


def _render_telegram(render: Renderer | None) -> str | None:
    """The Telegram text, or None: then the plain text goes by Telegram too (a Telegram
    text that fails on this event's data must not cost the client the message)."""
    if render is None:
        return None
    try:
        return render()
    except RenderError as exc:
        logger.warning("Telegram text not used, the plain one goes instead: %s", exc)
        return None


def plan_one(
    *,
    mode: NotifyMode,
    notify: NotifySettings,
    recipient: Recipient,
    client_id: str,
    manager_id: str | None,
    render: Renderer,
    opted_out: bool,
    confirm: bool,
    sms_available: bool,
    now: datetime,
    render_telegram: Renderer | None = None,
    held: Hold | None = None,
) -> PlannedNotification:
    """One notification for one recipient, in the status its settings and the mode give.

    Test mode takes the route live mode would take, and says so when there is none: the
    row stays `test` with its text and segments, but without a channel it could not use.
    `held`: quiet hours are on now for this recipient; a sendable row is then `scheduled`
    until they end (test mode only says it would wait: nothing is sent in test mode).
    """
    route = choose_route(notify, recipient, sms_available=sms_available)
    text, error = _render(render)
    figures = segment_text(text) if text is not None else None
    # Rendered whatever today's route: the recipient may subscribe before it is sent.
    telegram_text = _render_telegram(render_telegram) if text is not None else None

    def make(
        status: Status, reason: str | None, next_attempt_at: datetime | None = None
    ) -> PlannedNotification:
        return PlannedNotification(
            recipient=recipient.kind,
            client_id=client_id,
            manager_id=manager_id,
            channel=route.channel,
            phone=recipient.phone,
            status=status,
            reason=reason,
            text=text,
            encoding=figures.encoding if figures else None,
            units=figures.units if figures else None,
            segments=figures.segments if figures else None,
            next_attempt_at=next_attempt_at,
            telegram_text=telegram_text,
        )

    if error is not None:
        return make(Status.FAILED, error)
    if mode == "test":
        would = route.reason if route.channel else f"would be skipped: {route.reason}"
        if opted_out:
            return make(
                Status.TEST,
                f"client opted out of this notification (would be not_sent); {would}",
            )
        if confirm:
            return make(Status.TEST, f"would await confirmation; {would}")
        if held is not None and route.channel is not None:
            return make(Status.TEST, f"{held.would_reason}; {would}")
        return make(Status.TEST, would)
    if opted_out:
        return make(
            Status.NOT_SENT,
            "client opted out of this notification; the event is tracked by the manager",
        )
    if confirm:
        return make(
            Status.AWAITING_CONFIRMATION,
            f"confirmation requested before sending; {route.reason}",
        )
    if route.channel is None:
        return make(Status.SKIPPED, route.reason)
    if held is not None:
        return make(Status.SCHEDULED, f"{held.reason}; {route.reason}", held.until)
    return make(Status.PENDING, route.reason, next_attempt_at=now)


def plan_notifications(
    *,
    mode: NotifyMode,
    notify: NotifySettings,
    type_settings: EventTypeSettings,
    client: Recipient,
    client_sends: bool,
    manager: Recipient | None,
    manager_problem: str | None,
    render_client: Renderer,
    render_manager: Renderer,
    sms_available: bool,
    now: datetime,
    render_client_telegram: Renderer | None = None,
    render_manager_telegram: Renderer | None = None,
    client_held: Hold | None = None,
) -> list[PlannedNotification]:
    """The notifications one event creates.

    - mode `off`: none (the event itself is still stored);
    - the client, when the type sends to clients: normally by the route; when the client
      turned this type off, nothing, or a `not_sent` row if the type is tracked by the
      manager; `awaiting_confirmation` when the type asks before sending;
    - the responsible manager, when the type sends to managers (`skipped` with the reason
      when the client has none, or it is unknown).

    `client_held`: the client's quiet hours are on now (the caller leaves it None for an
    urgent type); managers are staff at work and are never held.
    """
    if mode == "off":
        return []
    planned: list[PlannedNotification] = []
    manager_id = manager.id if manager is not None else None
    if type_settings.send_to_client and (client_sends or type_settings.tracked_by_manager):
        planned.append(
            plan_one(
                mode=mode,
                notify=notify,
                recipient=client,
                client_id=client.id,
                manager_id=manager_id,
                render=render_client,
                opted_out=not client_sends,
                confirm=type_settings.confirm_before_send,
                sms_available=sms_available,
                now=now,
                render_telegram=render_client_telegram,
                held=client_held,
            )
        )
    if type_settings.send_to_manager:
        if manager is None:
            planned.append(
                PlannedNotification(
                    recipient="manager",
                    client_id=client.id,
                    manager_id=None,
                    channel=None,
                    phone=None,
                    status=Status.SKIPPED,
                    reason=manager_problem or "the client has no responsible manager",
                    text=None,
                )
            )
        else:
            planned.append(
                plan_one(
                    mode=mode,
                    notify=notify,
                    recipient=manager,
                    client_id=client.id,
                    manager_id=manager.id,
                    render=render_manager,
                    opted_out=False,
                    confirm=False,
                    sms_available=sms_available,
                    now=now,
                    render_telegram=render_manager_telegram,
                )
            )
    return planned
