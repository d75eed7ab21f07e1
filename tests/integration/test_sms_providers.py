"""Every SMS adapter against its provider's fake, over real loopback HTTP.

No database: a fake provider server, a real aiohttp.ClientSession and the adapter. Each
scenario runs for every provider that has the feature.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from dispatch.config import SmsServiceConfig
from dispatch.delivery.channels.outcome import ErrorKind, Outcome, OutcomeKind
from dispatch.delivery.channels.sms._http import PAUSE_SECONDS, RATE_LIMIT_SECONDS, HttpReply
from dispatch.delivery.channels.sms.base import (
    CallbackRejected,
    CallbackRequest,
    DeliveryState,
    ProviderError,
    Receipt,
    SmsMessage,
    SmsProvider,
)
from dispatch.delivery.channels.sms.http import HttpProvider, classify_refusal
from dispatch.delivery.channels.sms.registry import PROVIDER_KINDS, build_provider
from dispatch.delivery.channels.sms.smsaero import SmsAeroProvider
from dispatch.delivery.channels.sms.smsc import SmscProvider
from dispatch.delivery.channels.sms.smsru import SmsRuProvider, callback_hash
from dispatch.delivery.channels.sms.twilio import TwilioProvider
from tests.fakes.sms import FakeCallback, FakeSmsServer
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.sms_smsaero import FakeSmsAero
from tests.fakes.sms_smsc import FakeSmsc
from tests.fakes.sms_smsru import FakeSmsRu
from tests.fakes.sms_twilio import FakeTwilio, twilio_signature

TIMEOUT = 0.2
PHONE = "+79161234567"
TEXT = "Заказ ЗК-000123 готов к выдаче"
CALLBACK_SECRET = "cb-secret"
KINDS = ("smsc", "smsru", "smsaero", "twilio", "http")
WITH_STATUS = ("smsc", "smsru", "smsaero", "twilio")
SENDERS = {"twilio": "+15017122661"}
# Every credential the tests configure: none may appear in an outcome or error text.
SECRETS = ("secret", "test-api-id", "aero-key", "twilio-token", "gateway-token", CALLBACK_SECRET)


def make_fake(kind: str) -> FakeSmsServer:
    fakes: dict[str, Callable[[], FakeSmsServer]] = {
        "smsc": FakeSmsc,
        "smsru": FakeSmsRu,
        "smsaero": FakeSmsAero,
        "twilio": FakeTwilio,
        "http": FakeHttpGateway,
    }
    return fakes[kind]()


def credentials(kind: str) -> dict[str, str]:
    return {
        "smsc": {"login": "shop", "password": "secret", "token": CALLBACK_SECRET},
        "smsru": {"api_key": "test-api-id"},
        "smsaero": {"email": "shop@example.com", "api_key": "aero-key", "token": CALLBACK_SECRET},
        "twilio": {"account_sid": "AC" + "0" * 32, "token": "twilio-token"},
        "http": {"token": "gateway-token"},
    }[kind]


def wrong_credentials(kind: str) -> dict[str, str]:
    return {
        "smsc": {"password": "wrong"},
        "smsru": {"api_key": "wrong"},
        "smsaero": {"api_key": "wrong"},
        "twilio": {"token": "wrong"},
        "http": {"token": "wrong"},
    }[kind]


def make_config(kind: str, base_url: str, **overrides: Any) -> SmsServiceConfig:
    values: dict[str, Any] = {
        "name": f"{kind}-main",
        "kind": kind,
        "base_url": base_url,
        "sender": SENDERS.get(kind, "PARTS"),
        "timeout_seconds": TIMEOUT,
        **credentials(kind),
        **overrides,
    }
    return SmsServiceConfig(**values)


@dataclass
class Kit:
    """A running fake, a session, and the adapter configured for the fake."""

    kind: str
    fake: FakeSmsServer
    session: aiohttp.ClientSession
    provider: SmsProvider
    next_id: int = 41

    def adapter(self, **overrides: Any) -> SmsProvider:
        base_url = overrides.pop("base_url", self.fake.base_url)
        return build_provider(make_config(self.kind, base_url, **overrides), self.session)

    def message(self, phone: str = PHONE, text: str = TEXT) -> SmsMessage:
        self.next_id += 1
        return SmsMessage(self.next_id, phone, text, self.provider.config.sender)

    async def send(self, phone: str = PHONE, text: str = TEXT) -> Outcome:
        return await self.provider.send(self.message(phone, text))


async def start_kit(kind: str) -> Kit:
    fake = make_fake(kind)
    await fake.start()
    session = aiohttp.ClientSession()
    return Kit(kind, fake, session, build_provider(make_config(kind, fake.base_url), session))


@pytest.fixture(params=KINDS)
async def kit(request: pytest.FixtureRequest) -> AsyncIterator[Kit]:
    running = await start_kit(request.param)
    try:
        yield running
    finally:
        await running.session.close()
        await running.fake.stop()


@pytest.fixture(params=WITH_STATUS)
async def status_kit(request: pytest.FixtureRequest) -> AsyncIterator[Kit]:
    running = await start_kit(request.param)
    try:
        yield running
    finally:
        await running.session.close()
        await running.fake.stop()


def assert_clean(text: str) -> None:
    """Neither credentials nor the full phone number leak into reasons."""
    for secret in SECRETS:
        assert secret not in text
    assert PHONE.lstrip("+") not in text


# -- send -------------------------------------------------------------------------------

# What each fake records as the phone, and what each reply says about cost and parts.
RECORDED_PHONE = {
    "smsc": PHONE,
    "smsru": "79161234567",
    "smsaero": "79161234567",
    "twilio": PHONE,
    "http": PHONE,
}
REPLY_COST = {
    "smsc": Decimal("1.90"),
    "smsru": None,
    "smsaero": Decimal("1.9"),
    "twilio": None,
    "http": Decimal("1.90"),
}
REPLY_PARTS = {"smsc": 1, "smsru": None, "smsaero": None, "twilio": 1, "http": 1}


async def test_a_send_is_accepted_and_the_provider_got_it(kit: Kit) -> None:
    message = kit.message()

    outcome = await kit.provider.send(message)

    assert outcome.kind is OutcomeKind.SENT, outcome
    [sent] = kit.fake.sent
    assert outcome.provider_message_id == sent.provider_id
    assert (sent.phone, sent.text, sent.sender) == (RECORDED_PHONE[kit.kind], TEXT, message.sender)
    assert outcome.cost == REPLY_COST[kit.kind]
    assert outcome.parts == REPLY_PARTS[kit.kind]
    assert kit.fake.requests == 1


@pytest.mark.parametrize("kind", ["smsc", "http"])
async def test_our_notification_id_is_the_client_side_id(kind: str) -> None:
    kit = await start_kit(kind)
    try:
        message = kit.message()
        outcome = await kit.provider.send(message)
    finally:
        await kit.session.close()
        await kit.fake.stop()

    assert kit.fake.sent[0].client_id == str(message.notification_id)
    if kind == "smsc":  # SMSC echoes it as the message id
        assert outcome.provider_message_id == str(message.notification_id)


async def test_smsc_leaves_out_an_id_beyond_its_32_bit_range() -> None:
    kit = await start_kit("smsc")
    try:
        outcome = await kit.provider.send(SmsMessage(2**31, PHONE, TEXT))
    finally:
        await kit.session.close()
        await kit.fake.stop()

    assert kit.fake.sent[0].client_id is None
    assert outcome.provider_message_id == kit.fake.sent[0].provider_id != str(2**31)


async def test_the_generic_gateway_may_answer_without_an_id() -> None:
    kit = await start_kit("http")
    assert isinstance(kit.fake, FakeHttpGateway)
    kit.fake.reply_id = False
    try:
        message = kit.message()
        outcome = await kit.provider.send(message)
    finally:
        await kit.session.close()
        await kit.fake.stop()

    assert outcome.kind is OutcomeKind.SENT
    assert outcome.provider_message_id == str(message.notification_id)


async def test_cyrillic_arrives_intact(kit: Kit) -> None:
    text = (
        "Здравствуйте! Заказ №ЗК-000123 «ООО Ромашка» готов к выдаче. Ёлки: 15 230,50 ₽ — "
        "ждём вас до 19:00. Щёткин & Co, ул. Подъёмная 7"
    )

    outcome = await kit.send(text=text)

    assert outcome.kind is OutcomeKind.SENT, outcome
    assert kit.fake.sent[0].text == text
    assert kit.fake.sent[0].parts == 2  # 104 UCS-2 units: two parts
    if REPLY_PARTS[kit.kind] is not None:
        assert outcome.parts == 2


# -- failures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    kind: OutcomeKind
    error: ErrorKind
    pause: bool = False
    retry_after: float | None = None


RATE_LIMIT_WAIT = {
    "smsc": 60.0,
    "smsru": 60.0,
    "smsaero": 2.0,
    "twilio": RATE_LIMIT_SECONDS,
    "http": 3.0,
}
FAILURES = {
    "no_money": Expected(OutcomeKind.RETRY, ErrorKind.NO_MONEY, True, PAUSE_SECONDS),
    "auth": Expected(OutcomeKind.RETRY, ErrorKind.AUTH, True, PAUSE_SECONDS),
    "invalid_number": Expected(OutcomeKind.PERMANENT, ErrorKind.INVALID_NUMBER),
    "reject": Expected(OutcomeKind.PERMANENT, ErrorKind.REJECTED),
    "rate_limit": Expected(OutcomeKind.RETRY, ErrorKind.RATE_LIMIT),
    "server_error": Expected(OutcomeKind.RETRY, ErrorKind.TRANSIENT),
    "timeout": Expected(OutcomeKind.RETRY, ErrorKind.TRANSIENT),
}


@pytest.mark.parametrize("failure", list(FAILURES))
async def test_each_failure_becomes_the_right_outcome(kit: Kit, failure: str) -> None:
    kit.fake.fail_next(failure)  # type: ignore[arg-type]
    expected = FAILURES[failure]

    started = time.monotonic()
    outcome = await kit.send()
    elapsed = time.monotonic() - started

    assert (outcome.kind, outcome.error) == (expected.kind, expected.error), outcome
    assert outcome.pause_channel is expected.pause
    if failure == "rate_limit":
        assert outcome.retry_after == RATE_LIMIT_WAIT[kit.kind]
    elif expected.retry_after is not None:
        assert outcome.retry_after == expected.retry_after
    assert outcome.reason
    assert_clean(outcome.reason)
    assert kit.fake.sent == []
    assert elapsed < TIMEOUT + 0.2  # a timeout gives up at the configured time
    if failure == "timeout":
        assert "no reply within" in outcome.reason


async def test_after_a_failure_the_next_send_goes_through(kit: Kit) -> None:
    kit.fake.server_error_status = 502
    kit.fake.fail_next("server_error", times=2)

    first, second, third = [await kit.send() for _ in range(3)]

    assert (first.error, second.error) == (ErrorKind.TRANSIENT, ErrorKind.TRANSIENT)
    assert "502" in first.reason
    assert third.kind is OutcomeKind.SENT
    assert len(kit.fake.sent) == 1
    assert kit.fake.requests == 3


async def test_the_provider_itself_refuses_bad_credentials(kit: Kit) -> None:
    provider = kit.adapter(**wrong_credentials(kit.kind))

    outcome = await provider.send(kit.message())

    assert (outcome.kind, outcome.error, outcome.pause_channel) == (
        OutcomeKind.RETRY,
        ErrorKind.AUTH,
        True,
    ), outcome
    assert_clean(outcome.reason)
    assert "wrong" not in outcome.reason


async def test_the_provider_itself_refuses_when_money_runs_out(kit: Kit) -> None:
    kit.fake.balance = kit.fake.price_per_part / 2

    outcome = await kit.send()

    assert (outcome.kind, outcome.error, outcome.pause_channel) == (
        OutcomeKind.RETRY,
        ErrorKind.NO_MONEY,
        True,
    ), outcome
    assert kit.fake.sent == []


async def test_the_provider_itself_refuses_a_bad_number(kit: Kit) -> None:
    outcome = await kit.send(phone="+7123")

    assert (outcome.kind, outcome.error) == (OutcomeKind.PERMANENT, ErrorKind.INVALID_NUMBER)


async def test_missing_credentials_pause_the_channel_without_a_request(kit: Kit) -> None:
    blank = dict.fromkeys(credentials(kit.kind), None)
    blank |= {"sender": None} if kit.kind == "twilio" else {}
    provider = kit.adapter(**blank, base_url=None if kit.kind == "http" else kit.fake.base_url)

    outcome = await provider.send(kit.message())

    assert (outcome.error, outcome.pause_channel) == (ErrorKind.CONFIG, True), outcome
    if kit.kind == "http":
        assert "base_url" in outcome.reason
    assert kit.fake.requests == 0


async def test_an_enforced_rate_limit_refuses_the_excess(kit: Kit) -> None:
    kit.fake.rate_limit = 2

    outcomes = [await kit.send() for _ in range(4)]

    assert [o.kind for o in outcomes] == [OutcomeKind.SENT] * 2 + [OutcomeKind.RETRY] * 2
    assert {o.error for o in outcomes[2:]} == {ErrorKind.RATE_LIMIT}
    assert all((o.retry_after or 0) > 0 for o in outcomes[2:])
    assert (len(kit.fake.sent), kit.fake.rate_limited) == (2, 2)


async def test_latency_within_the_timeout_is_fine(kit: Kit) -> None:
    kit.fake.latency = TIMEOUT / 3

    outcome = await kit.send()

    assert outcome.kind is OutcomeKind.SENT


async def test_an_unreachable_provider_is_transient() -> None:
    async with aiohttp.ClientSession() as session:
        for kind in KINDS:
            provider = build_provider(make_config(kind, "http://127.0.0.1:9/"), session)
            outcome = await provider.send(SmsMessage(1, PHONE, TEXT, SENDERS.get(kind, "X")))
            assert (outcome.kind, outcome.error) == (OutcomeKind.RETRY, ErrorKind.TRANSIENT), kind


# -- balance ----------------------------------------------------------------------------

CURRENCY = {"smsc": "RUB", "smsru": "RUB", "smsaero": "RUB", "twilio": "USD", "http": "RUB"}


@pytest.mark.parametrize("as_string", [True, False], ids=["string", "number"])
async def test_balance_is_read_as_decimal(kit: Kit, as_string: bool) -> None:
    kit.fake.balance = Decimal("84.75")
    kit.fake.balance_as_string = as_string

    balance = await kit.provider.balance()

    assert balance.amount == Decimal("84.75")
    assert isinstance(balance.amount, Decimal)
    assert balance.currency == CURRENCY[kit.kind]


async def test_balance_goes_down_as_messages_go_out(kit: Kit) -> None:
    before = (await kit.provider.balance()).amount

    await kit.send()

    assert (await kit.provider.balance()).amount == before - kit.fake.sent[0].cost


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        ("auth", ErrorKind.AUTH),
        ("rate_limit", ErrorKind.RATE_LIMIT),
        ("server_error", ErrorKind.TRANSIENT),
        ("timeout", ErrorKind.TRANSIENT),
    ],
)
async def test_a_failed_balance_read_raises_provider_error(
    kit: Kit, failure: str, error: ErrorKind
) -> None:
    kit.fake.fail_next(failure)  # type: ignore[arg-type]

    with pytest.raises(ProviderError) as raised:
        await kit.provider.balance()

    assert raised.value.error is error
    assert_clean(str(raised.value))


async def test_balance_with_wrong_credentials_is_an_auth_error(kit: Kit) -> None:
    with pytest.raises(ProviderError) as raised:
        await kit.adapter(**wrong_credentials(kit.kind)).balance()

    assert raised.value.error is ErrorKind.AUTH


# -- statuses ---------------------------------------------------------------------------

UNKNOWN_IDS = {"smsc": "777", "smsru": "000000-0000000", "smsaero": "999999", "twilio": "SM404"}


async def test_statuses_map_to_delivery_states(status_kit: Kit) -> None:
    kit = status_kit
    phones = ["+79161234567", "+79161234568", "+79161234569"]
    outcomes = [await kit.send(phone=phone) for phone in phones]
    ids = [o.provider_message_id or "" for o in outcomes]
    kit.fake.deliver(ids[0])
    kit.fake.fail(ids[1])
    asked = [*zip(ids, phones, strict=True), (UNKNOWN_IDS[kit.kind], "+79990000000")]

    receipts = await kit.provider.fetch_statuses(asked)

    assert kit.provider.supports_status
    assert [(r.provider_message_id, r.state) for r in receipts] == [
        (ids[0], DeliveryState.DELIVERED),
        (ids[1], DeliveryState.FAILED),
        (ids[2], DeliveryState.PENDING),
        (UNKNOWN_IDS[kit.kind], DeliveryState.UNKNOWN),
    ]
    assert receipts[1].reason


async def test_a_single_status_is_fetched_too(status_kit: Kit) -> None:
    outcome = await status_kit.send()
    status_kit.fake.deliver(outcome.provider_message_id or "")

    [receipt] = await status_kit.provider.fetch_statuses(
        [(outcome.provider_message_id or "", PHONE)]
    )

    assert receipt.state is DeliveryState.DELIVERED
    assert await status_kit.provider.fetch_statuses([]) == []


async def test_a_failed_status_request_raises_provider_error(status_kit: Kit) -> None:
    outcome = await status_kit.send()
    status_kit.fake.fail_next("auth")

    with pytest.raises(ProviderError) as raised:
        await status_kit.provider.fetch_statuses([(outcome.provider_message_id or "", PHONE)])

    assert raised.value.error is ErrorKind.AUTH


async def test_the_generic_gateway_has_no_status_endpoint() -> None:
    async with aiohttp.ClientSession() as session:
        provider = build_provider(make_config("http", "http://127.0.0.1:9/sms"), session)
        with pytest.raises(ProviderError) as raised:
            await provider.fetch_statuses([("1", PHONE)])
    assert not provider.supports_status
    assert raised.value.error is ErrorKind.CONFIG


# -- delivery callbacks -----------------------------------------------------------------


@dataclass
class Receiver:
    """A loopback endpoint doing what Vestnik's receipt handler does with a callback."""

    provider: SmsProvider
    receipts: list[Receipt] = field(default_factory=list)
    runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/receipts/{name}", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/receipts/{self.provider.name}"
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        form: dict[str, list[str]] = {}
        if request.content_type == "application/x-www-form-urlencoded":
            posted = await request.post()
            form = {key: [str(v) for v in posted.getall(key)] for key in posted}
        callback = CallbackRequest(
            method=request.method,
            url=str(request.url),
            headers=dict(request.headers),
            query=dict(request.query),
            form=form,
            body=body,
        )
        try:
            result = self.provider.parse_callback(callback)
        except CallbackRejected as exc:
            return web.Response(status=403, text=str(exc))
        self.receipts.extend(result.receipts)
        return web.Response(text=result.reply_body, content_type=result.reply_content_type)


@pytest.fixture
async def receiver(kit: Kit) -> AsyncIterator[Receiver]:
    running = Receiver(kit.provider)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def callback_url(kit: Kit, receiver: Receiver, secret: str | None = CALLBACK_SECRET) -> str:
    """Where the provider is told to call: with `?secret=` for the secret-checked kinds."""
    if kit.kind in ("smsc", "smsaero") and secret is not None:
        return f"{receiver.url}?secret={secret}"
    return receiver.url


REPLY_BODY = {"smsc": "OK", "smsru": "100", "smsaero": "OK", "twilio": "", "http": "OK"}


@pytest.mark.parametrize(
    ("change", "state"),
    [("deliver", DeliveryState.DELIVERED), ("fail", DeliveryState.FAILED)],
)
async def test_a_delivery_callback_becomes_a_receipt(
    kit: Kit, receiver: Receiver, change: str, state: DeliveryState
) -> None:
    outcome = await kit.send()
    provider_id = outcome.provider_message_id or ""
    getattr(kit.fake, change)(provider_id)

    status, body = await kit.fake.callback(provider_id, callback_url(kit, receiver)).post(
        kit.session
    )

    assert (status, body) == (200, REPLY_BODY[kit.kind])
    [receipt] = receiver.receipts
    assert (receipt.provider_message_id, receipt.state) == (provider_id, state)


def forged_callbacks(kit: Kit, receiver: Receiver, provider_id: str) -> list[FakeCallback]:
    """Callbacks that must be refused: wrong or missing secret, signature, hash, token."""
    fake = kit.fake
    genuine = fake.callback(provider_id, callback_url(kit, receiver))
    if isinstance(fake, FakeSmsRu):
        return [fake.callback(provider_id, receiver.url, api_id="guessed")]
    if isinstance(fake, FakeTwilio):
        unsigned = dict(genuine.headers)
        del unsigned["X-Twilio-Signature"]
        return [
            fake.callback(provider_id, receiver.url, token="guessed"),
            FakeCallback(genuine.url, genuine.body, unsigned),
            # Signed for another URL: the URL is part of what Twilio signs.
            FakeCallback(
                genuine.url,
                genuine.body,
                fake.callback(provider_id, receiver.url + "x").headers,
            ),
        ]
    if isinstance(fake, FakeHttpGateway):
        return [fake.callback(provider_id, receiver.url, token="guessed")]
    return [
        fake.callback(provider_id, callback_url(kit, receiver, secret="guessed")),
        fake.callback(provider_id, callback_url(kit, receiver, secret=None)),
    ]


async def test_a_forged_callback_is_rejected(kit: Kit, receiver: Receiver) -> None:
    outcome = await kit.send()
    provider_id = outcome.provider_message_id or ""
    kit.fake.deliver(provider_id)

    replies = [await cb.post(kit.session) for cb in forged_callbacks(kit, receiver, provider_id)]

    assert [status for status, _ in replies] == [403] * len(replies)
    assert receiver.receipts == []


async def test_an_unsigned_smsru_callback_is_refused_when_api_key_is_set() -> None:
    """Issue 11, finding 1: leaving `hash` out was the way around the hash check."""
    kit = await start_kit("smsru")
    receiver = Receiver(kit.provider)
    await receiver.start()
    assert isinstance(kit.fake, FakeSmsRu)
    try:
        outcome = await kit.send()
        kit.fake.deliver(outcome.provider_message_id or "")
        callback = kit.fake.callback(outcome.provider_message_id or "", receiver.url, signed=False)
        status, body = await callback.post(kit.session)
    finally:
        await receiver.stop()
        await kit.session.close()
        await kit.fake.stop()

    assert (status, body) == (403, "smsru: callback without hash")
    assert receiver.receipts == []


def test_smsru_callback_entries_of_other_kinds_are_skipped() -> None:
    provider = SmsRuProvider(make_config("smsru", "http://127.0.0.1:9/"), None)  # type: ignore[arg-type]
    entries = ["callcheck_status\n123\n401\n1700000000", "sms_status\nA-1\n103\n1700000000"]
    request = CallbackRequest(
        method="POST",
        url="http://vestnik/receipts/smsru",
        headers={},
        query={},
        form={"data[]": entries, "hash": [callback_hash("test-api-id", entries)]},
        body=b"",
    )

    result = provider.parse_callback(request)

    assert [(r.provider_message_id, r.state) for r in result.receipts] == [
        ("A-1", DeliveryState.DELIVERED)
    ]
    assert result.reply_body == "100"


# -- registry ---------------------------------------------------------------------------


async def test_the_registry_builds_the_adapter_of_each_kind() -> None:
    classes = {
        "smsc": SmscProvider,
        "smsru": SmsRuProvider,
        "smsaero": SmsAeroProvider,
        "twilio": TwilioProvider,
        "http": HttpProvider,
    }
    async with aiohttp.ClientSession() as session:
        for kind, cls in classes.items():
            provider = build_provider(make_config(kind, "http://127.0.0.1:9/"), session)
            assert type(provider) is cls
            assert (provider.kind, provider.name, provider.session) == (
                kind,
                f"{kind}-main",
                session,
            )
        bogus = SmsServiceConfig.model_construct(name="x", kind="carrier-pigeon")
        with pytest.raises(ValueError, match="carrier-pigeon"):
            build_provider(bogus, session)
    assert set(PROVIDER_KINDS) == set(classes)


# -- classification details without a fake ---------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "error", "retry_after"),
    [
        (422, b"", {}, OutcomeKind.PERMANENT, ErrorKind.REJECTED, None),
        (
            400,
            b'{"message": "text too long"}',
            {},
            OutcomeKind.PERMANENT,
            ErrorKind.REJECTED,
            None,
        ),
        (
            422,
            b'{"error": {"code": "invalid_number", "message": "no"}}',
            {},
            OutcomeKind.PERMANENT,
            ErrorKind.INVALID_NUMBER,
            None,
        ),
        (402, b"", {}, OutcomeKind.RETRY, ErrorKind.NO_MONEY, PAUSE_SECONDS),
        (403, b"", {}, OutcomeKind.RETRY, ErrorKind.AUTH, PAUSE_SECONDS),
        (429, b"", {"Retry-After": "7"}, OutcomeKind.RETRY, ErrorKind.RATE_LIMIT, 7.0),
        (404, b"Not Found", {}, OutcomeKind.RETRY, ErrorKind.TRANSIENT, None),
        (503, b"", {"Retry-After": "5"}, OutcomeKind.RETRY, ErrorKind.TRANSIENT, 5.0),
    ],
)
def test_generic_gateway_refusals(
    status: int,
    body: bytes,
    headers: dict[str, str],
    kind: OutcomeKind,
    error: ErrorKind,
    retry_after: float | None,
) -> None:
    outcome = classify_refusal(HttpReply(status, headers, body))

    assert (outcome.kind, outcome.error, outcome.retry_after) == (kind, error, retry_after)


def test_twilio_accepts_a_signature_made_without_the_port() -> None:
    config = make_config("twilio", "http://127.0.0.1:9/")
    provider = TwilioProvider(config, None)  # type: ignore[arg-type]
    fields = [("MessageSid", "SM1"), ("MessageStatus", "delivered")]
    signed_for = "https://vestnik.example.com/receipts/twilio"

    def request(url: str) -> CallbackRequest:
        return CallbackRequest(
            method="POST",
            url=url,
            headers={"x-twilio-signature": twilio_signature("twilio-token", signed_for, fields)},
            query={},
            form={key: [value] for key, value in fields},
            body=b"",
        )

    # A proxy in front of Vestnik may hand on the URL with the default port spelled out.
    result = provider.parse_callback(request("https://vestnik.example.com:443/receipts/twilio"))

    assert [r.state for r in result.receipts] == [DeliveryState.DELIVERED]
    with pytest.raises(CallbackRejected):
        provider.parse_callback(request("https://vestnik.example.com/receipts/other"))


async def test_twilio_and_smsaero_ask_for_receipts_at_the_configured_callback_url() -> None:
    """`callback_url` reaches the APIs that take it per message."""
    import aiohttp

    from tests.fakes.sms_smsaero import FakeSmsAero
    from tests.fakes.sms_twilio import FakeTwilio

    callback = "https://vestnik.example.com/api/v1/providers/main/status"
    async with FakeTwilio() as twilio, FakeSmsAero() as aero, aiohttp.ClientSession() as http:
        twilio_provider = build_provider(
            SmsServiceConfig(
                name="main",
                kind="twilio",
                base_url=twilio.base_url,
                account_sid=twilio.account_sid,
                token=twilio.token,
                sender="+15017122661",
                callback_url=callback,
            ),
            http,
        )
        aero_provider = build_provider(
            SmsServiceConfig(
                name="main",
                kind="smsaero",
                base_url=aero.base_url,
                email=aero.email,
                api_key=aero.api_key,
                callback_url=callback,
            ),
            http,
        )
        message = SmsMessage(
            notification_id=1, phone="+79161234567", text="Заказ готов", sender="+15017122661"
        )
        assert (await twilio_provider.send(message)).kind is OutcomeKind.SENT
        assert (await aero_provider.send(message)).kind is OutcomeKind.SENT
    assert twilio.last_form["StatusCallback"] == callback
    assert aero.last_body["callbackUrl"] == callback
