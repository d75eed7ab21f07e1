"""Fuzzing the ERP webhook (issue 7, item 4): random and hostile bodies, correctly signed.

A correctly signed body is answered 200/202 (accepted), or a clear 4xx with the contract's
error body — never a 5xx. Hypothesis drives the random part from a worker thread; each example
is posted through the running service on the test's event loop.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.common import signature
from tests.conftest import WEBHOOK_SECRET, Service
from tests.events import ALL_TYPES, make_event

ACCEPTED = {200, 202}
CLEAR_REFUSALS = {400, 413, 415, 422}


def check_shape(status: int, body: Any) -> None:
    """The contract's bodies: the accepted event, or {"error": {code, message, details}}."""
    assert isinstance(body, dict), body
    if status in ACCEPTED:
        assert isinstance(body.get("event_id"), str), body
        assert isinstance(body.get("duplicate"), bool), body
        assert isinstance(body.get("notifications"), list), body
        return
    error = body.get("error")
    assert set(body) == {"error"}, body
    assert isinstance(error, dict), body
    assert set(error) == {"code", "message", "details"}, body
    assert isinstance(error["code"], str) and error["code"], body
    assert isinstance(error["message"], str) and error["message"], body
    assert isinstance(error["details"], list), body
    assert "Traceback" not in error["message"], body


async def post_raw(
    service: Service, raw: bytes, *, content_type: str | None = "application/json"
) -> tuple[int, Any]:
    headers = {signature.HEADER: signature.sign(WEBHOOK_SECRET, raw)}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await service.client.post("/api/v1/events", data=raw, headers=headers)
    text = await response.text()
    try:
        body = json.loads(text)
    except ValueError:
        body = text
    return response.status, body


def event_text(**changes: Any) -> str:
    """A valid event (fresh id) as JSON text, for textual surgery."""
    event = make_event("client_order.ready")
    event.update(changes)
    return json.dumps(event, ensure_ascii=False)


def fresh_id() -> str:
    return f"fz-{uuid.uuid4().hex[:16]}"


# --------------------------------------------------------------------------- hand-made cases

DEEP = 10_000


def _hostile_bodies() -> dict[str, bytes]:
    valid = event_text()
    amount = '"amount": 15230.5'
    assert amount in valid
    return {
        "empty": b"",
        "whitespace": b"  \n ",
        "malformed_utf8": b'{"event_id": "\xff\xfe", "type": "client_order.ready"}',
        "overlong_utf8": b'{"event_id": "\xc0\xaf"}',
        "utf8_bom": b"\xef\xbb\xbf" + valid.encode(),
        "utf16": valid.encode("utf-16"),
        "latin1": valid.replace("ООО", "Caf\u00e9").encode("latin-1", "replace"),
        "nested_arrays_10000": b"[" * DEEP + b"]" * DEEP,
        "nested_objects_10000": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
        "nested_in_document_10000": valid.replace(
            amount, amount + ', "x": ' + "[" * DEEP + "]" * DEEP
        ).encode(),
        "truncated": valid[: len(valid) // 2].encode(),
        "trailing_garbage": (valid + "}").encode(),
        "two_documents": (valid + valid).encode(),
        "top_level_array": b"[1, 2, 3]",
        "top_level_string": b'"event"',
        "top_level_null": b"null",
        "top_level_number": b"1e999",
        "single_quotes": b"{'event_id': 'x'}",
        "comment": b'/* c */ {"event_id": "x"}',
        "wrong_types": json.dumps(
            {"event_id": 1, "type": 5, "occurred_at": {}, "client": "x", "document": []}
        ).encode(),
        "unknown_type": event_text(event_id=fresh_id(), type="nope.nope").encode(),
        "no_fields": b"{}",
        "over_max_body": (valid[:-1] + ', "pad": "' + "x" * 300_000 + '"}').encode(),
    }


HOSTILE = _hostile_bodies()


async def expect_all(service: Service, bodies: dict[str, bytes], allowed: set[int]) -> None:
    """Post every body (one service for all: fast); report every case that went wrong."""
    wrong = []
    for case, raw in bodies.items():
        status, body = await post_raw(service, raw)
        try:
            assert status in allowed, status
            check_shape(status, body)
        except AssertionError:
            wrong.append((case, status, body))
    assert wrong == []


async def test_hostile_signed_bodies_get_a_clear_4xx(service: Service) -> None:
    await expect_all(service, HOSTILE, CLEAR_REFUSALS)


def _with_amount(value: str) -> bytes:
    raw = event_text(event_id=fresh_id())
    assert '"amount": 15230.5' in raw
    return raw.replace('"amount": 15230.5', f'"amount": {value}').encode()


async def test_huge_numbers_are_accepted_or_refused_never_5xx(service: Service) -> None:
    bodies = {
        "int_4000_digits": _with_amount("9" * 4000),
        "negative_int_4000_digits": _with_amount("-" + "9" * 4000),
        "float_tiny": _with_amount("1e-400"),
        "float_max": _with_amount("1.7976931348623157e308"),
        "decimal_1000_places": _with_amount("0." + "1" * 1000),
    }
    await expect_all(service, bodies, ACCEPTED | CLEAR_REFUSALS)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
async def test_non_finite_numbers_never_5xx(
    service: Service, backend: str, value: str, request: pytest.FixtureRequest
) -> None:
    status, body = await post_raw(service, _with_amount(value))

    assert status in ACCEPTED | CLEAR_REFUSALS, (value, status, body)
    check_shape(status, body)


async def test_odd_unicode_in_strings_never_5xx(service: Service) -> None:
    texts = {
        "lone_high_surrogate": "ООО\\ud800Ромашка",
        "lone_low_surrogate": "\\udfff",
        "bidi_zero_width": "\u202e\u200b\ufeff",
        "emoji": "😀" * 50,
        "combining": "e" + "\u0301" * 500,
    }
    bodies = {
        name: event_text(event_id=fresh_id()).replace("ООО Ромашка", text).encode()
        for name, text in texts.items()
    }
    await expect_all(service, bodies, ACCEPTED | CLEAR_REFUSALS)


async def test_a_nul_character_never_5xx(
    service: Service, backend: str, request: pytest.FixtureRequest
) -> None:
    raw = event_text(event_id=fresh_id()).replace("ООО Ромашка", "ООО\\u0000Ромашка")
    status, body = await post_raw(service, raw.encode())

    assert status in ACCEPTED | CLEAR_REFUSALS, (status, body)
    check_shape(status, body)


async def test_wrong_content_types_get_415(service: Service) -> None:
    for content_type in (
        None,
        "",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/json; charset=latin-1",
        "application/json; charset=utf-16",
        "application/jsonp",
    ):
        status, body = await post_raw(
            service, event_text(event_id=fresh_id()).encode(), content_type=content_type
        )
        assert status == 415, (content_type, status, body)
        check_shape(status, body)
        assert body["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize("digits", [4301, 5000])
async def test_integers_beyond_pythons_digit_limit_are_a_400(
    service: Service, digits: int
) -> None:
    raw = event_text(event_id=fresh_id()).replace(
        '"amount": 15230.5', '"amount": 1' + "0" * (digits - 1)
    )
    status, body = await post_raw(service, raw.encode())

    assert status == 400, body
    check_shape(status, body)


async def test_deep_but_parseable_nesting_never_5xx(service: Service) -> None:
    for depth in (100, 500, 900, 990):
        nested = "[" * depth + "]" * depth
        raw = event_text(event_id=fresh_id()).replace(
            '"amount": 15230.5', f'"amount": 15230.5, "extra": {nested}'
        )
        status, body = await post_raw(service, raw.encode())
        assert status in ACCEPTED | CLEAR_REFUSALS, (depth, status, body)
        check_shape(status, body)


@pytest.mark.parametrize("value", [[], {}, ["client_order.ready"]], ids=["list", "dict", "list1"])
async def test_an_unhashable_type_field_is_a_422(service: Service, value: Any) -> None:
    raw = event_text(event_id=fresh_id(), type=value)

    status, body = await post_raw(service, raw.encode())

    assert status == 422, (status, body)
    check_shape(status, body)


async def test_a_null_blocked_flag_is_not_a_500(service: Service) -> None:
    event = make_event("client_order.ready", event_id=fresh_id())
    event["client"]["blocked"] = None

    status, body = await post_raw(service, json.dumps(event).encode())

    assert status in ACCEPTED | CLEAR_REFUSALS, (status, body)
    check_shape(status, body)


async def test_duplicate_keys_are_a_400(service: Service) -> None:
    valid = event_text(event_id=fresh_id())
    raw = '{"event_id": "dup-first", ' + valid[1:]

    status, body = await post_raw(service, raw.encode())

    assert status == 400, (status, body)
    check_shape(status, body)


# --------------------------------------------------------------------------- hypothesis

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**300), max_value=10**300)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["", "client_order.ready", "2026-11-27", "+79161234567", "\x00", "😀"])
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)

EVENT_PATHS = (
    ("event_id",),
    ("type",),
    ("occurred_at",),
    ("client",),
    ("client", "id"),
    ("client", "name"),
    ("client", "phone"),
    ("client", "manager_id"),
    ("client", "blocked"),
    ("manager",),
    ("manager", "id"),
    ("manager", "phone"),
    ("document",),
    ("document", "number"),
    ("document", "date"),
    ("document", "amount"),
    ("document", "currency"),
    ("document", "lines"),
)


@st.composite
def mutated_events(draw: st.DrawFn) -> Any:
    """A real event of a random type with a few fields replaced by random JSON or removed."""
    event = copy.deepcopy(make_event(draw(st.sampled_from(ALL_TYPES)), event_id=fresh_id()))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(EVENT_PATHS))
        parent: Any = event
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue
        if draw(st.booleans()):
            parent[path[-1]] = draw(json_values)
        else:
            parent.pop(path[-1], None)
    return event


def encode(document: Any, ensure_ascii: bool) -> bytes:
    text = json.dumps(document, ensure_ascii=ensure_ascii)
    # Lone surrogates cannot be UTF-8: `surrogatepass` makes malformed bytes of them (a 400).
    return text.encode("utf-8", "surrogatepass")


FUZZ_EXAMPLES = {"fast": 120, "slow": 3000}


async def _fuzz(
    service: Service, backend: str, strategy: st.SearchStrategy[Any], examples: int
) -> dict[str, int]:
    loop = asyncio.get_running_loop()
    figures: dict[str, int] = {}

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=examples <= FUZZ_EXAMPLES["fast"],
        suppress_health_check=list(HealthCheck),
    )
    @given(document=strategy, ensure_ascii=st.booleans())
    def run(document: Any, ensure_ascii: bool) -> None:
        raw = encode(document, ensure_ascii)
        future = asyncio.run_coroutine_threadsafe(post_raw(service, raw), loop)
        status, body = future.result(timeout=30)
        figures[str(status)] = figures.get(str(status), 0) + 1
        assert status in ACCEPTED | CLEAR_REFUSALS, (status, body, raw[:500])
        check_shape(status, body)

    await asyncio.to_thread(run)
    print("webhook fuzz figures (status: count):", dict(sorted(figures.items())))
    return figures


async def test_random_json_signed_never_5xx(service: Service, backend: str) -> None:
    figures = await _fuzz(service, backend, json_values, FUZZ_EXAMPLES["fast"])
    assert sum(figures.values()) >= FUZZ_EXAMPLES["fast"] // 2


async def test_mutated_events_signed_never_5xx(service: Service, backend: str) -> None:
    figures = await _fuzz(service, backend, mutated_events(), FUZZ_EXAMPLES["fast"])
    assert sum(figures.values()) >= FUZZ_EXAMPLES["fast"] // 2


@pytest.mark.slow
async def test_random_and_mutated_payloads_at_length(service: Service, backend: str) -> None:
    random_figures = await _fuzz(service, backend, json_values, FUZZ_EXAMPLES["slow"])
    mutated_figures = await _fuzz(service, backend, mutated_events(), FUZZ_EXAMPLES["slow"])
    assert sum(random_figures.values()) + sum(mutated_figures.values()) > 0
