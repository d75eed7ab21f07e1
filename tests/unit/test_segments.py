"""Tests for dispatch.segments: encoding choice, unit counts and part boundaries.

The GSM tables, unit costs and grapheme boundaries are recomputed here independently
of the module (from reference/sms-providers.md §6 and regex's ``\\X``), so a wrong
table or an off-by-one in the packer fails these tests rather than agreeing with itself.
"""

from __future__ import annotations

import dataclasses
import random
import string
from itertools import accumulate, cycle, islice

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.render.segments import (
    _BMP_JOINERS,
    Segmentation,
    _clusters,
    is_gsm7,
    segment_text,
)

# --- Independent oracle -------------------------------------------------------------

# The alphabet exactly as the reference spells it, with the ranges written out.
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./"
    + string.digits
    + ":;<=>?¡"
    + string.ascii_uppercase
    + "ÄÖÑÜ§¿"
    + string.ascii_lowercase
    + "äöñüà"
)
GSM_EXTENSION = "^{}\\[~]|€\f"
GSM_ALL = frozenset(GSM_BASIC + GSM_EXTENSION)

SINGLE = {"gsm7": 160, "ucs2": 70}
PART = {"gsm7": 153, "ucs2": 67}

CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"
EMOJI = [
    "😜",
    "👍🏽",  # skin tone modifier
    "👩🏾‍💻",  # skin tone + ZWJ
    "👨‍👩‍👧‍👦",  # ZWJ family, 11 UTF-16 units
    "🏳️‍🌈",  # variation selector + ZWJ
    "🇷🇺",  # regional-indicator pair
    "❤️",  # BMP pictograph + VS16
    "☺",
]
COMBINING = ["\u0301", "\u0308", "\u0483", "\u20dd", "\u200d", "\ufe0f"]
OTHER_NON_GSM = ["\t", "`", "ç", "\x1b", "\u00a0", "№", "«", "»", "—"]
# Code points whose clusters are built by rules other than Extend (Hangul jamo,
# Indic conjuncts, Prepend), to exercise the shortcut in _clusters.
EXOTIC = ["\u1100", "\u1161", "\u11a8", "한", "क", "्", "ष", "\u0600", "\u0d4e", "ि"]


def gsm_units(text: str) -> int:
    """Septets: extension characters cost 2."""
    return sum(2 if ch in GSM_EXTENSION else 1 for ch in text)


def ucs2_units(text: str) -> int:
    """UTF-16 code units: characters outside the BMP cost 2."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def units_of(text: str, encoding: str) -> int:
    return gsm_units(text) if encoding == "gsm7" else ucs2_units(text)


def repeat_to(alphabet: str, n: int) -> str:
    return "".join(islice(cycle(alphabet), n))


def part_lengths(seg: Segmentation) -> list[int]:
    return [len(part) for part in seg.parts]


def check_segmentation(text: str) -> Segmentation:
    """Assert every invariant of segment_text on ``text``; return the result."""
    seg = segment_text(text)
    expected_encoding = "gsm7" if all(ch in GSM_ALL for ch in text) else "ucs2"
    assert seg.encoding == expected_encoding
    assert is_gsm7(text) == (expected_encoding == "gsm7")
    assert seg.units == units_of(text, seg.encoding)
    assert seg.segments == len(seg.parts)
    assert "".join(seg.parts) == text
    assert isinstance(seg.parts, tuple)

    if not text:
        assert (seg.encoding, seg.units, seg.segments, seg.parts) == ("gsm7", 0, 0, ())
        return seg
    if seg.units <= SINGLE[seg.encoding]:
        assert seg.parts == (text,)
        return seg

    limit = PART[seg.encoding]
    assert seg.segments >= 2
    for part in seg.parts:
        assert part, "empty part"
        assert units_of(part, seg.encoding) <= limit
        utf16 = part.encode("utf-16-le")
        first, last = int.from_bytes(utf16[:2], "little"), int.from_bytes(utf16[-2:], "little")
        assert not 0xD800 <= last <= 0xDBFF, "part ends with a lone high surrogate"
        assert not 0xDC00 <= first <= 0xDFFF, "part starts with a lone low surrogate"

    # Grapheme boundaries of the whole text, from regex directly.
    graphemes = regex.findall(r"\X", text)
    starts = [0, *accumulate(len(g) for g in graphemes)][:-1]
    grapheme_at = dict(zip(starts, graphemes, strict=True))
    end_of = {}  # every code point offset -> the grapheme that covers it
    for start, g in zip(starts, graphemes, strict=True):
        for offset in range(start, start + len(g)):
            end_of[offset] = (start, g)

    boundaries = list(accumulate(len(p) for p in seg.parts))[:-1]
    for previous, boundary in zip(seg.parts, boundaries, strict=False):
        start, g = end_of[boundary]
        oversized = units_of(g, seg.encoding) > limit
        if boundary != start:
            # Only a grapheme wider than a whole part may be cut.
            assert oversized, f"boundary {boundary} splits grapheme {g!r}"
        # Greedy: the previous part was closed only because the next unit did not fit.
        nxt = grapheme_at[boundary] if boundary == start and not oversized else text[boundary]
        assert units_of(previous, seg.encoding) + units_of(nxt, seg.encoding) > limit
    return seg


# --- Seed table: characters per 1..4 segments --------------------------------------

SEED_TABLE = [  # (segments, Cyrillic chars, Latin chars) from the seed's note
    (1, 70, 160),
    (2, 134, 306),
    (3, 201, 459),
    (4, 268, 612),
]


@pytest.mark.parametrize(("segments", "cyrillic", "latin"), SEED_TABLE)
@pytest.mark.parametrize(
    ("kind", "alphabet", "encoding"),
    [
        ("cyrillic", CYRILLIC, "ucs2"),
        ("cyrillic-with-spaces", "Ваш заказ готов к выдаче. ", "ucs2"),
        ("latin", string.ascii_letters, "gsm7"),
        ("latin-with-punctuation", "Your order 12345 is ready, pick it up! ", "gsm7"),
    ],
)
def test_seed_table_boundaries(
    segments: int, cyrillic: int, latin: int, kind: str, alphabet: str, encoding: str
) -> None:
    n = cyrillic if kind.startswith("cyrillic") else latin
    at_limit = check_segmentation(repeat_to(alphabet, n))
    assert at_limit.encoding == encoding
    assert at_limit.units == n
    assert at_limit.segments == segments

    over = check_segmentation(repeat_to(alphabet, n + 1))
    assert over.encoding == encoding
    assert over.segments == segments + 1


# --- Reference test vectors ----------------------------------------------------------

VECTORS = [
    ("160a", "a" * 160, "gsm7", [160]),
    ("161a", "a" * 161, "gsm7", [153, 8]),
    ("307a", "a" * 307, "gsm7", [153, 153, 1]),
    ("80euro", "€" * 80, "gsm7", [80]),
    ("81euro", "€" * 81, "gsm7", [76, 5]),
    ("159a+euro", "a" * 159 + "€", "gsm7", [153, 7]),
    ("euro-not-split", "a" * 152 + "€" + "a" * 10, "gsm7", [152, 11]),
    ("70zh", "ж" * 70, "ucs2", [70]),
    ("71zh", "ж" * 71, "ucs2", [67, 4]),
    ("135zh", "ж" * 135, "ucs2", [67, 67, 1]),
    ("35emoji", "😜" * 35, "ucs2", [35]),
    ("36emoji", "😜" * 36, "ucs2", [33, 3]),
    ("tab", "a\tb", "ucs2", [3]),
    ("emoji+133digits", "😜" + repeat_to(string.digits, 133), "ucs2", [66, 67, 1]),
]


@pytest.mark.parametrize(
    ("body", "encoding", "lengths"),
    [pytest.param(body, enc, lengths, id=name) for name, body, enc, lengths in VECTORS],
)
def test_reference_vectors(body: str, encoding: str, lengths: list[int]) -> None:
    seg = check_segmentation(body)
    assert seg.encoding == encoding
    assert part_lengths(seg) == lengths


def test_36_emoji_leaves_first_part_at_66_units() -> None:
    seg = segment_text("😜" * 36)
    assert [ucs2_units(p) for p in seg.parts] == [66, 6]
    assert seg.units == 72


# --- GSM alphabet and extension table ------------------------------------------------


def test_gsm_alphabet_sizes() -> None:
    # GSM 03.38: 128 basic code points minus ESC; 10 extension characters incl. FF.
    assert len(set(GSM_BASIC)) == 127
    assert len(set(GSM_EXTENSION)) == 10


def test_every_bmp_code_point_classified_as_the_reference_says() -> None:
    for cp in range(0x10000):
        ch = chr(cp)
        assert is_gsm7(ch) == (ch in GSM_ALL), f"U+{cp:04X}"


@pytest.mark.parametrize("ch", list(GSM_BASIC), ids=lambda c: f"U+{ord(c):04X}")
def test_basic_char_costs_one_septet(ch: str) -> None:
    seg = segment_text(ch * 160)
    assert (seg.encoding, seg.units, seg.segments) == ("gsm7", 160, 1)


@pytest.mark.parametrize("ch", list(GSM_EXTENSION), ids=lambda c: f"U+{ord(c):04X}")
def test_extension_char_counts_double(ch: str) -> None:
    fits = check_segmentation("x" * 158 + ch)
    assert (fits.encoding, fits.units, fits.segments) == ("gsm7", 160, 1)

    over = check_segmentation("x" * 159 + ch)
    assert (over.encoding, over.units) == ("gsm7", 161)
    assert part_lengths(over) == [153, 7]
    assert over.parts[1].endswith(ch)

    assert segment_text(ch * 80).units == 160
    assert segment_text(ch * 81).segments == 2


@pytest.mark.parametrize("ch", list(GSM_EXTENSION), ids=lambda c: f"U+{ord(c):04X}")
def test_escape_pair_is_never_split(ch: str) -> None:
    seg = check_segmentation("x" * 152 + ch + "x" * 20)
    assert part_lengths(seg) == [152, 21]
    assert gsm_units(seg.parts[0]) == 152


@pytest.mark.parametrize("ch", OTHER_NON_GSM, ids=lambda c: f"U+{ord(c):04X}")
def test_non_gsm_char_forces_ucs2(ch: str) -> None:
    assert not is_gsm7(ch)
    seg = check_segmentation("a" * 100 + ch)
    assert seg.encoding == "ucs2"
    assert seg.units == 101
    assert part_lengths(seg) == [67, 34]


def test_tab_and_backtick_force_ucs2_in_short_text() -> None:
    assert segment_text("a\tb").encoding == "ucs2"
    assert segment_text("say `hi`").encoding == "ucs2"
    assert segment_text("say 'hi'").encoding == "gsm7"


def test_is_gsm7() -> None:
    assert is_gsm7("")
    assert is_gsm7(GSM_BASIC + GSM_EXTENSION)
    assert not is_gsm7("Заказ")
    assert not is_gsm7("ok 😜")


# --- Clusters that must stay whole ---------------------------------------------------


@pytest.mark.parametrize(
    ("body", "lengths"),
    [
        pytest.param("a" * 152 + "\r\n" + "a" * 10, [152, 12], id="crlf-gsm"),
        pytest.param("ж" * 66 + "\r\n" + "ж" * 5, [66, 7], id="crlf-ucs2"),
        pytest.param("ж" * 65 + "👍🏽" + "ж" * 10, [65, 12], id="skin-tone"),
        pytest.param("ж" * 60 + "👨‍👩‍👧‍👦" + "ж" * 5, [60, 12], id="zwj-family"),
        pytest.param("ж" * 66 + "🇷🇺" + "ж", [66, 3], id="flag"),
        pytest.param("ж" * 66 + "е\u0301" + "ж" * 5, [66, 7], id="combining-acute"),
        pytest.param("ж" * 66 + "❤️" + "ж" * 5, [66, 7], id="bmp-emoji-vs16"),
        pytest.param("ж" * 66 + "\u1100\u1161\u11a8" + "ж" * 5, [66, 8], id="hangul-jamo"),
    ],
)
def test_grapheme_moves_whole_to_next_part(body: str, lengths: list[int]) -> None:
    seg = check_segmentation(body)
    assert part_lengths(seg) == lengths


def test_crlf_stays_gsm() -> None:
    seg = segment_text("line one\r\nline two")
    assert (seg.encoding, seg.units) == ("gsm7", 18)


# --- Pathological clusters wider than a part -----------------------------------------


def test_huge_zwj_chain_is_split_by_code_point() -> None:
    chain = "👨\u200d" * 40 + "👨"
    assert len(regex.findall(r"\X", chain)) == 1
    seg = check_segmentation(chain)
    assert seg.units == 41 * 2 + 40
    assert seg.segments == 2


def test_huge_combining_pile_fills_parts() -> None:
    pile = "a" + "\u0301" * 150
    assert len(regex.findall(r"\X", pile)) == 1
    assert part_lengths(check_segmentation(pile)) == [67, 67, 17]
    # It continues the current part instead of leaving it short.
    assert part_lengths(check_segmentation("ж" * 10 + pile)) == [67, 67, 27]


def test_grapheme_just_wider_than_a_part() -> None:
    # 68 units: fits no concatenated part, so it is cut, but nothing else is.
    wide = "a" + "\u0301" * 67
    seg = check_segmentation("ж" * 10 + wide + "ж" * 3)
    assert part_lengths(seg) == [67, 14]


def test_wide_grapheme_within_single_sms_is_not_split() -> None:
    seg = check_segmentation("a" + "\u0301" * 69)
    assert (seg.units, seg.parts) == (70, ("a" + "\u0301" * 69,))


# --- Small cases --------------------------------------------------------------------


def test_empty_text() -> None:
    assert segment_text("") == Segmentation("gsm7", 0, 0, ())


def test_result_is_frozen() -> None:
    seg = segment_text("hi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        seg.units = 3  # type: ignore[misc]


def test_lone_surrogate_does_not_crash() -> None:
    seg = segment_text("a" * 80 + "\ud83d" + "b")
    assert (seg.encoding, seg.units, seg.segments) == ("ucs2", 82, 2)
    assert "".join(seg.parts) == "a" * 80 + "\ud83d" + "b"


# --- Cluster shortcut agrees with \X -------------------------------------------------


def test_bmp_joiner_set_is_sane() -> None:
    for ch in ["\u0301", "\u200d", "\ufe0f", "\u1100", "\u1161", "\u11a8", "\u094d", "\u0600"]:
        assert ch in _BMP_JOINERS, f"U+{ord(ch):04X}"
    assert _BMP_JOINERS.isdisjoint(GSM_ALL)
    assert _BMP_JOINERS.isdisjoint(CYRILLIC)


def test_all_non_joining_bmp_code_points_stand_alone() -> None:
    # Neighbours in code point order, reversed and shuffled: \X must see no cluster.
    loners = [
        chr(cp)
        for cp in range(0x10000)
        if not 0xD800 <= cp <= 0xDFFF and chr(cp) not in _BMP_JOINERS and cp != 0x0D
    ]
    shuffled = loners.copy()
    random.Random(1234).shuffle(shuffled)
    for order in (loners, loners[::-1], shuffled):
        text = "".join(order)
        assert regex.findall(r"\X", text) == order
        assert _clusters(text) == order


mixed_pieces = st.sampled_from(
    [*GSM_BASIC, *GSM_EXTENSION, "\r\n", *CYRILLIC, *EMOJI, *COMBINING, *OTHER_NON_GSM, *EXOTIC]
)
gsm_texts = st.lists(st.sampled_from([*GSM_BASIC, *GSM_EXTENSION, "\r\n"]), max_size=400).map(
    "".join
)
# Mostly one script with a sprinkling of everything else, long enough for several parts.
mixed_texts = st.lists(
    st.one_of(st.sampled_from(CYRILLIC), st.sampled_from(GSM_BASIC), mixed_pieces),
    max_size=250,
).map("".join)
ucs2_bmp_texts = st.lists(
    st.sampled_from([*CYRILLIC, " ", ".", "\r\n", "\r", "\n", "€"]), max_size=300
).map("".join)


@given(st.one_of(st.text(), mixed_texts))
def test_clusters_shortcut_matches_regex(text: str) -> None:
    assert _clusters(text) == regex.findall(r"\X", text)


# --- Properties ----------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.one_of(gsm_texts, mixed_texts, ucs2_bmp_texts))
def test_segmentation_properties(text: str) -> None:
    check_segmentation(text)


@settings(max_examples=100, deadline=None)
@given(
    prefix=mixed_texts,
    base=st.sampled_from(["👨", "a", "ж", "😜"]),
    joiner=st.sampled_from(["\u200d👨", "\u0301", "\U0001f3fd", "\u200d😜\ufe0f"]),
    count=st.integers(min_value=20, max_value=120),
    suffix=mixed_texts,
)
def test_oversized_graphemes_properties(
    prefix: str, base: str, joiner: str, count: int, suffix: str
) -> None:
    check_segmentation(prefix + base + joiner * count + suffix)
