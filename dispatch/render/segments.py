"""SMS segmentation: pick GSM-7 or UCS-2 and split a body into concatenated parts.

Follows the algorithm of Twilio's ``message-segment-calculator`` as described in
``reference/sms-providers.md`` §6: the unit of placement is the grapheme cluster, a
cluster that does not fit in the current part starts the next one (the previous part
is left short), so no surrogate pair, escape pair or emoji sequence is ever split.

One deliberate difference from that calculator: it treats *any* multi-code-unit
grapheme as UCS-2, so a GSM-only body containing ``"\\r\\n"`` becomes UCS-2 there. Here
the encoding depends only on the characters (CR and LF are both GSM), as the GSM
03.38 alphabet itself does; the CRLF pair is still kept in one part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import regex

__all__ = [
    "GSM7_PART",
    "GSM7_SINGLE",
    "UCS2_PART",
    "UCS2_SINGLE",
    "Encoding",
    "Segmentation",
    "is_gsm7",
    "segment_text",
]

Encoding = Literal["gsm7", "ucs2"]

#: Septets in a single GSM-7 SMS / in one part of a concatenated one (6-octet UDH).
GSM7_SINGLE: Final = 160
GSM7_PART: Final = 153
#: UTF-16 code units in a single UCS-2 SMS / in one part of a concatenated one.
UCS2_SINGLE: Final = 70
UCS2_PART: Final = 67

# GSM 03.38 default alphabet as Twilio's UnicodeToGSM.ts maps it (127 characters: the
# 128 code points minus ESC, which only introduces the extension table).
_GSM_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: sent as ESC + code, so each costs 2 septets.
_GSM_EXTENSION_CHARS: Final = "^{}\\[~]|€\f"
_GSM_EXTENSION: Final = frozenset(_GSM_EXTENSION_CHARS)
_GSM_ALL: Final = _GSM_BASIC | _GSM_EXTENSION

_GRAPHEME: Final = regex.compile(r"\X")

# Every UAX #29 rule that keeps two code points in one cluster (other than CR x LF)
# needs at least one code point of these classes: Extend/ZWJ (GB9, GB9c, GB11),
# SpacingMark (GB9a), Prepend (GB9b), Hangul jamo L/V/T (GB6-8), regional indicators
# (GB12-13). Text free of them is one cluster per code point, apart from CRLF.
_MAY_JOIN: Final = regex.compile(
    r"[\p{Grapheme_Cluster_Break=Extend}\p{Grapheme_Cluster_Break=ZWJ}"
    r"\p{Grapheme_Cluster_Break=SpacingMark}\p{Grapheme_Cluster_Break=Prepend}"
    r"\p{Grapheme_Cluster_Break=L}\p{Grapheme_Cluster_Break=V}"
    r"\p{Grapheme_Cluster_Break=T}\p{Grapheme_Cluster_Break=Regional_Indicator}]"
)
# The BMP members of _MAY_JOIN, taken from the regex module's own Unicode tables so they
# always agree with \X. A frozenset turns the common check (Cyrillic text) into a C-level
# set operation instead of a regex scan; building it costs ~15 ms once, at import.
_BMP_JOINERS: Final = frozenset(_MAY_JOIN.findall("".join(map(chr, range(0x10000)))))


@dataclass(frozen=True, slots=True)
class Segmentation:
    """How a body goes out as SMS: its encoding, size and the text of each part."""

    encoding: Encoding
    units: int  # septets for gsm7 (extension chars count 2), UTF-16 code units for ucs2
    segments: int  # == len(parts)
    parts: tuple[str, ...]  # the text of each segment; "".join(parts) == text


def is_gsm7(text: str) -> bool:
    """Return True if every character is in the GSM 03.38 basic or extension table."""
    return _GSM_ALL.issuperset(text)


def segment_text(text: str) -> Segmentation:
    """Split ``text`` into SMS parts the way the provider counts them.

    GSM-7 if every character is GSM, else UCS-2. One part if the body fits a single SMS
    (160 septets / 70 units), else parts of at most 153 septets / 67 units, filled
    greedily by grapheme cluster. An empty body is gsm7 with no parts.
    """
    if not text:
        return Segmentation("gsm7", 0, 0, ())

    if _GSM_ALL.issuperset(text):
        encoding: Encoding = "gsm7"
        units = len(text) + sum(map(text.count, _GSM_EXTENSION_CHARS))
        if units <= GSM7_SINGLE:
            return Segmentation(encoding, units, 1, (text,))
        limit, cost = GSM7_PART, _gsm7_cost
        # No GSM character joins a cluster with its neighbours (only CR LF does), so the
        # grapheme regex is never needed here.
        one_unit_each = units == len(text)
    else:
        encoding = "ucs2"
        # surrogatepass: a lone surrogate (malformed input) still costs one unit.
        units = len(text.encode("utf-16-le", "surrogatepass")) // 2
        if units <= UCS2_SINGLE:
            return Segmentation(encoding, units, 1, (text,))
        limit, cost = UCS2_PART, _ucs2_cost
        # units == len(text) means all BMP; typical long Cyrillic text takes this path.
        one_unit_each = units == len(text) and _BMP_JOINERS.isdisjoint(text)

    if one_unit_each and "\r\n" not in text:
        # Every code point is its own cluster and costs 1: fixed-width slices.
        parts = tuple(text[i : i + limit] for i in range(0, len(text), limit))
    else:
        clusters = _split_crlf(text) if encoding == "gsm7" else _clusters(text)
        parts = _pack(clusters, cost, limit)
    return Segmentation(encoding, units, len(parts), parts)


def _gsm7_cost(cluster: str) -> int:
    """Septets of a GSM cluster: a single character, or CRLF (2 basic septets)."""
    return 2 if cluster in _GSM_EXTENSION else len(cluster)


def _ucs2_cost(cluster: str) -> int:
    """UTF-16 code units of a cluster (characters outside the BMP cost 2)."""
    return len(cluster.encode("utf-16-le", "surrogatepass")) // 2


def _split_crlf(text: str) -> Sequence[str]:
    """Clusters of text that has no joining characters: code points, CRLF kept whole."""
    if "\r\n" not in text:
        return text
    clusters: list[str] = []
    for i, chunk in enumerate(text.split("\r\n")):
        if i:
            clusters.append("\r\n")
        clusters.extend(chunk)
    return clusters


def _clusters(text: str) -> Sequence[str]:
    """Grapheme clusters of ``text``, skipping the regex when every code point stands alone.

    Equal to ``regex.findall(r"\\X", text)``; split out so tests can check the shortcut.
    """
    if text and max(text) <= "\uffff" and _BMP_JOINERS.isdisjoint(text):
        return list(_split_crlf(text))
    clusters: list[str] = _GRAPHEME.findall(text)
    return clusters


def _pack(clusters: Iterable[str], cost: Callable[[str], int], limit: int) -> tuple[str, ...]:
    """Fill parts of ``limit`` units greedily; a cluster that does not fit starts a new part.

    A cluster wider than a whole part cannot be kept intact, so it is spread over parts
    code point by code point (a Python code point is never half a surrogate pair).
    """
    parts: list[str] = []
    current: list[str] = []
    free = limit
    for cluster in clusters:
        size = cost(cluster)
        if size > free:
            if size > limit:
                # Pathological (e.g. a huge ZWJ chain or a pile of combining marks): it
                # gets split anyway, so keep filling the current part rather than
                # leaving it short.
                for char in cluster:
                    char_size = cost(char)
                    if char_size > free:
                        parts.append("".join(current))
                        current, free = [], limit
                    current.append(char)
                    free -= char_size
                continue
            # current is non-empty here: an empty part has free == limit >= size.
            parts.append("".join(current))
            current, free = [], limit
        current.append(cluster)
        free -= size
    if current:
        parts.append("".join(current))
    return tuple(parts)
