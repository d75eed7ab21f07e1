"""Delivering one claimed notification: route, rate limits, send, record the outcome.

The route is chosen again at every attempt by the planner's own rule (`choose_route`:
Telegram when the recipient has a usable chat, else the reserve SMS route), so a client who
subscribed, stopped or blocked the bot since the event was accepted is reached the way that
is right now. A Telegram failure that Telegram will not fix (blocked, chat not found)
switches to the reserve route within the same attempt; each hop is a history row with its
reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.config import NotifySettings, SmsServiceConfig
from dispatch.delivery.cards import CardDraft, TelegramCards
from dispatch.delivery.channels.outcome import ErrorKind, Outcome, OutcomeKind
from dispatch.delivery.channels.sms.base import SmsMessage, SmsProvider
from dispatch.delivery.outcome_writer import OutcomeWriter
from dispatch.delivery.ratelimit import KeyedWindows, Pause, SlidingWindow, Stamp
from dispatch.delivery.retry import RetryPolicy
from dispatch.erp_actions.buttons import Button, ErpButtons
from dispatch.intake.planner import Recipient, choose_route
from dispatch.ops.log_summary import WindowSummary
from dispatch.ops.metrics import Metrics
from dispatch.phones import mask_phone
from dispatch.runtime_config import RuntimeConfig
from storage import directory, links
from storage.actions import presses
from storage.database import Database
from storage.queue import ClaimedNotification, Finish
from storage.statuses import Status
from storage.types import utcnow

logger = logging.getLogger(__name__)

# A bot-wide or provider-wide slot that frees up within this time is waited for in place;
# anything longer goes back to the queue (never a long sleep inside a worker slot).
MAX_LOCAL_WAIT_SECONDS = 1.0


class TelegramSender(Protocol):
    async def send(
        self, chat_id: int, text: str, *, html: bool = False, buttons: Sequence[Button] = ()
    ) -> Outcome: ...

    async def edit(
        self, chat_id: int, message_id: int, text: str, *, html: bool = False
    ) -> Outcome: ...


@dataclass(slots=True)
class ChannelLimits:
    """Send-rate limits and channel-wide pauses of this process."""

    telegram_bot: SlidingWindow
    telegram_chats: KeyedWindows
    telegram_pause: Pause = field(default_factory=Pause)
    sms: dict[str, SlidingWindow] = field(default_factory=dict)
    sms_pause: dict[str, Pause] = field(default_factory=dict)
    sms_configs: dict[str, SmsServiceConfig] = field(default_factory=dict)
    """The entry each SMS window and pause was made for."""

    @classmethod
    def build(
        cls,
        *,
        telegram_per_second: float,
        telegram_per_chat_per_second: float,
        providers: Mapping[str, SmsProvider],
    ) -> ChannelLimits:
        limits = cls(
            telegram_bot=SlidingWindow(telegram_per_second),
            telegram_chats=KeyedWindows(telegram_per_chat_per_second),
        )
        for provider in providers.values():
            limits.sms_limits(provider)
        return limits

    def sms_limits(self, provider: SmsProvider) -> tuple[SlidingWindow, Pause]:
        """The rate window and the pause of `provider`'s service. They outlive the provider
        objects, which the directory rebuilds when an entry changes: a changed rate gets a
        new window, and any change a fresh pause (the admin's change is what the pause was
        waiting for: money, credentials, the URL)."""
        name, config = provider.name, provider.config
        known = self.sms_configs.get(name)
        if known != config:
            if known is None or known.rate_per_second != config.rate_per_second:
                self.sms[name] = SlidingWindow(config.rate_per_second)
            self.sms_pause[name] = Pause()
            self.sms_configs[name] = config
        return self.sms[name], self.sms_pause[name]


class _Deferred(Exception):
    """Not sent now, for a local reason (rate limit, paused channel): back to the queue."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Prepared:
    """What a batch of claimed notifications needs from the database, read in one go."""

    notify: NotifySettings
    chats: Mapping[int, Sequence[int]]
    """Usable Telegram chats by notification id (empty when Telegram is not the route)."""
    buttons: Mapping[int, Sequence[Button]] = field(default_factory=dict)
    """The ERP's buttons of client notifications whose event has `actions`."""


@dataclass(slots=True)
class _Attempt:
    item: ClaimedNotification
    hops: list[dict[str, Any]] = field(default_factory=list)
    channel: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    buttons: Sequence[Button] = ()
    """The ERP's buttons under the Telegram message."""

    def hop(self, reason: str, channel: str | None) -> None:
        self.hops.append(
            {
                "from_status": Status.SENDING,
                "to_status": Status.SENDING,
                "reason": reason,
                "channel": channel,
            }
        )


def _describe_attempts(seconds: float) -> Callable[[Counter[str]], str]:
    def describe(counts: Counter[str]) -> str:
        parts = ", ".join(f"{key} {n}" for key, n in sorted(counts.items()))
        return f"delivery attempts in the last {seconds:g} s: {parts}"

    return describe


class DeliveryService:
    """Sends claimed notifications and records the result in the journal."""

    def __init__(
        self,
        *,
        db: Database,
        config: RuntimeConfig,
        telegram: TelegramSender | None,
        providers: Mapping[str, SmsProvider],
        limits: ChannelLimits,
        policy: RetryPolicy,
        metrics: Metrics | None = None,
        writer: OutcomeWriter | None = None,
        summary_seconds: float = 60.0,
        cards: TelegramCards | None = None,
        erp_buttons: ErpButtons | None = None,
    ) -> None:
        """`summary_seconds`: the window of the INFO line counting the attempts by channel
        and outcome; single sends are logged at DEBUG (failures stay at INFO)."""
        self._db = db
        self._summary = WindowSummary(logger, summary_seconds, _describe_attempts(summary_seconds))
        self._writer = writer or OutcomeWriter(db)
        self._config = config
        self._telegram = telegram
        self._providers = providers
        self._limits = limits
        self._policy = policy
        self._metrics = metrics
        self._cards = cards
        self._erp_buttons = erp_buttons

    @property
    def writer(self) -> OutcomeWriter:
        return self._writer

    def provider_for(self, notify: NotifySettings) -> SmsProvider | None:
        if notify.sms_service is not None:
            return self._providers.get(notify.sms_service)
        return next(iter(self._providers.values()), None)

    async def prepare(
        self, session: AsyncSession, items: Sequence[ClaimedNotification]
    ) -> Prepared:
        """Settings and usable chats for a freshly claimed batch, so that each delivery
        needs no query of its own before the send. Read at claim time, the moment the
        attempt starts: the route is still chosen anew at every attempt."""
        notify = (await self._config.current(session)).notify
        if notify.service != "telegram" or self._telegram is None:
            return Prepared(notify, {})
        found = await links.usable_chats_many(
            session,
            client_ids={i.client_id for i in items if i.recipient == "client" and i.client_id},
            manager_ids={i.manager_id for i in items if i.recipient == "manager" and i.manager_id},
        )
        chats: dict[int, Sequence[int]] = {}
        for item in items:
            if item.recipient == "client" and item.client_id is not None:
                chats[item.id] = found.clients.get(item.client_id, [])
            elif item.recipient == "manager" and item.manager_id is not None:
                chats[item.id] = found.managers.get(item.manager_id, [])
        buttons: dict[int, list[Button]] = {}
        if self._erp_buttons is not None:
            actions = await presses.actions_of(
                session, (item.id for item in items if item.recipient == "client")
            )
            buttons = self._erp_buttons.buttons_of(actions)
        return Prepared(notify, chats, buttons)

    async def deliver(self, item: ClaimedNotification, prepared: Prepared) -> None:
        """One attempt for `item`; always ends with the row leaving `sending` (or the lease
        having passed to another worker). `prepared` comes from `prepare` for its batch."""
        attempt = _Attempt(item)
        try:
            outcome = await self._route_and_send(attempt, prepared)
        except _Deferred as deferred:
            await self._defer(attempt, deferred)
            return
        await self._record(attempt, outcome)

    async def _route_and_send(self, attempt: _Attempt, prepared: Prepared) -> Outcome:
        item = attempt.item
        if not item.text:
            return Outcome.permanent("the notification has no text", ErrorKind.CONFIG)
        notify = prepared.notify
        chats = prepared.chats.get(item.id, ())
        provider = self.provider_for(notify)
        recipient = Recipient(
            kind="manager" if item.recipient == "manager" else "client",
            id=(item.manager_id if item.recipient == "manager" else item.client_id) or "",
            phone=item.phone,
            chat_ids=chats,
        )
        if self._telegram is None:
            unusable: str | None = "no Telegram bot is configured"
        elif not chats:
            unusable = f"the {item.recipient} has no usable Telegram chat"
        else:
            unusable = None
        route = choose_route(
            notify, recipient, sms_available=provider is not None, telegram_unusable=unusable
        )
        if route.channel == "telegram":
            attempt.buttons = prepared.buttons.get(item.id, ())
            outcome = await self._send_telegram(attempt, chats, notify)
            if outcome.kind in (OutcomeKind.SENT, OutcomeKind.RETRY):
                return outcome
            # Telegram will not fix this one (blocked, chat not found): the reserve, now.
            route = choose_route(
                notify,
                recipient,
                sms_available=provider is not None,
                telegram_unusable=f"Telegram failed: {outcome.reason}",
            )
        if route.channel is None or provider is None or item.phone is None:
            return Outcome.permanent(route.reason, ErrorKind.CONFIG)
        if notify.service == "telegram":
            attempt.hop(route.reason, "sms")
        return await self._send_sms(attempt, provider, item.phone)

    @asynccontextmanager
    async def _card(
        self, attempt: _Attempt, notify: NotifySettings
    ) -> AsyncIterator[CardDraft | None]:
        """The living order card this Telegram attempt edits or sends, if any."""
        if not notify.telegram_cards or self._cards is None:
            yield None
            return
        async with self._cards.draft(attempt.item, notify) as draft:
            yield draft

    async def _send_telegram(
        self, attempt: _Attempt, chats: Sequence[int], notify: NotifySettings
    ) -> Outcome:
        """Send to every usable chat of the recipient; sent when any chat got it."""
        assert self._telegram is not None
        attempt.channel = "telegram"
        paused = self._limits.telegram_pause.remaining()
        if paused > 0:
            raise _Deferred(paused, f"Telegram paused: {self._limits.telegram_pause.reason}")
        chat_wait = max(self._limits.telegram_chats.wait_time(chat) for chat in chats)
        if chat_wait > 0:
            raise _Deferred(chat_wait, "per-chat rate limit")
        outcomes: list[Outcome] = []
        # The type's Telegram text when it has one (HTML); the SMS text otherwise.
        html = attempt.item.telegram_text is not None
        text = attempt.item.telegram_text or attempt.item.text or ""
        buttons = attempt.buttons
        async with self._card(attempt, notify) as card:
            for chat_id in chats:
                bot_slot = await self._take_slot(
                    self._limits.telegram_bot, "Telegram bot rate limit"
                )
                _, chat_slot = self._limits.telegram_chats.acquire(chat_id)
                try:
                    if card is not None:
                        outcome = await card.deliver(self._telegram, chat_id)
                    else:
                        outcome = await self._telegram.send(
                            chat_id, text, html=html, buttons=buttons
                        )
                finally:
                    self._limits.telegram_bot.done(bot_slot)
                    if chat_slot is not None:
                        self._limits.telegram_chats.done(chat_slot)
                outcomes.append(outcome)
                if outcome.kind in (OutcomeKind.BLOCKED, OutcomeKind.PERMANENT) and (
                    outcome.error in (ErrorKind.BLOCKED, ErrorKind.CHAT_NOT_FOUND)
                ):
                    await self._mark_chat_unusable(chat_id, outcome)
                if outcome.pause_channel and outcome.retry_after:
                    self._limits.telegram_pause.pause(outcome.retry_after, outcome.reason)
                    break
        sent = [o for o in outcomes if o.kind is OutcomeKind.SENT]
        if sent:
            attempt.fields["telegram_message_id"] = int(sent[0].provider_message_id or 0) or None
            return sent[0]
        retry = [o for o in outcomes if o.kind is OutcomeKind.RETRY]
        if retry:
            return retry[0]
        return outcomes[-1]

    async def _mark_chat_unusable(self, chat_id: int, outcome: Outcome) -> None:
        async with self._db.transaction() as session:
            await directory.set_chat_flags(session, chat_id, blocked=True)
        logger.info("chat %s marked blocked: %s", chat_id, outcome.reason)

    async def _send_sms(self, attempt: _Attempt, provider: SmsProvider, phone: str) -> Outcome:
        item = attempt.item
        attempt.channel = "sms"
        window, pause = self._limits.sms_limits(provider)
        if pause.remaining() > 0:
            raise _Deferred(
                pause.remaining(), f"SMS service {provider.name} paused: {pause.reason}"
            )
        slot = await self._take_slot(window, f"{provider.name} rate limit")
        attempt.fields["provider"] = provider.name
        try:
            outcome = await provider.send(
                SmsMessage(
                    notification_id=item.id,
                    phone=phone,
                    text=item.text or "",
                    sender=provider.config.sender,
                )
            )
        finally:
            window.done(slot)
        if outcome.pause_channel and outcome.retry_after:
            pause.pause(outcome.retry_after, outcome.reason)
        logger.log(
            logging.DEBUG if outcome.kind is OutcomeKind.SENT else logging.INFO,
            "sms %s to %s via %s: %s %s",
            item.id,
            mask_phone(phone),
            provider.name,
            outcome.kind.value,
            outcome.reason,
        )
        return outcome

    async def _take_slot(self, window: SlidingWindow, reason: str) -> Stamp:
        """A slot of `window`, waiting for it in place when that is short."""
        while True:
            wait, stamp = window.acquire()
            if stamp is not None:
                return stamp
            if wait > MAX_LOCAL_WAIT_SECONDS:
                raise _Deferred(wait, reason)
            await asyncio.sleep(wait)

    async def _defer(self, attempt: _Attempt, deferred: _Deferred) -> None:
        """Back to the queue without counting an attempt, unless it is too old by now."""
        item = attempt.item
        now = utcnow()
        retry_at = now + timedelta(seconds=deferred.seconds)
        queued_at = item.queued_at or item.created_at
        gave_up = self._policy.gives_up(attempts=0, queued_at=queued_at, retry_at=retry_at)
        if gave_up:
            finish = Finish(
                item.id,
                item.lease_until,
                Status.FAILED,
                now,
                f"{gave_up}; last: {deferred.reason}",
                history=attempt.hops,
                fields={"next_attempt_at": None},
            )
        else:
            finish = Finish(
                item.id,
                item.lease_until,
                Status.PENDING,
                now,
                f"deferred {deferred.seconds:.1f} s: {deferred.reason}",
                fields={"next_attempt_at": retry_at},
            )
        await self._writer.record(finish)

    def _observe(self, attempt: _Attempt, outcome: Outcome, now: datetime) -> None:
        metrics = self._metrics
        if metrics is None:
            return
        channel = attempt.channel or "none"
        metrics.attempts.labels(channel=channel, outcome=outcome.kind.value).inc()
        if outcome.kind is OutcomeKind.SENT:
            queued = attempt.item.queued_at or attempt.item.created_at
            metrics.delivery_latency.labels(channel=channel).observe(
                max(0.0, (now - queued).total_seconds())
            )
            return
        provider = "telegram" if channel == "telegram" else attempt.fields.get("provider", "-")
        kind = outcome.error.value if outcome.error else "unknown"
        metrics.provider_errors.labels(channel=channel, provider=provider, kind=kind).inc()
        if channel == "telegram" and outcome.error is ErrorKind.RATE_LIMIT:
            metrics.telegram_429.inc()

    async def _record(self, attempt: _Attempt, outcome: Outcome) -> None:
        item = attempt.item
        now = utcnow()
        self._observe(attempt, outcome, now)
        self._summary.count(f"{attempt.channel or 'no channel'} {outcome.kind.value}")
        attempts = item.attempts + 1
        fields: dict[str, Any] = {
            "attempts": attempts,
            "channel": attempt.channel,
            **attempt.fields,
        }
        if outcome.kind is OutcomeKind.SENT:
            status = Status.SENT
            reason = outcome.reason
            fields.update(
                sent_at=now,
                next_attempt_at=None,
                provider_message_id=outcome.provider_message_id,
                cost=outcome.cost,
                provider_parts=outcome.parts,
            )
            if attempt.channel == "telegram":
                fields["provider"] = "telegram"
        elif outcome.kind is OutcomeKind.RETRY:
            delay = self._policy.delay(attempts, outcome.retry_after)
            retry_at = now + timedelta(seconds=delay)
            gave_up = self._policy.gives_up(
                attempts=attempts, queued_at=item.queued_at or item.created_at, retry_at=retry_at
            )
            if gave_up:
                status, reason = Status.FAILED, f"{gave_up}; last error: {outcome.reason}"
                fields["next_attempt_at"] = None
            else:
                status, reason = Status.PENDING, f"will retry in {delay:.0f} s: {outcome.reason}"
                fields["next_attempt_at"] = retry_at
        else:
            status, reason = Status.FAILED, outcome.reason
            fields["next_attempt_at"] = None
        recorded = await self._writer.record(
            Finish(item.id, item.lease_until, status, now, reason, attempt.hops, fields)
        )
        if not recorded:
            logger.warning(
                "notification %s: lease lost before recording %s (another worker has it)",
                item.id,
                status.value,
            )
