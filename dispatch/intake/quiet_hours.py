"""Quiet hours (CONTRACT §9): when a client's notification waits for the morning.

Pure functions of a window, a zone and an instant, so the rule is testable without a
database or a clock; `notify.quiet_hours` and `notify.timezone` are validated with them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_WINDOW = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")
_OFF = frozenset({"", "none", "off"})


@dataclass(frozen=True, slots=True)
class QuietWindow:
    start: time
    end: time

    @property
    def text(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def ends_after(self, now: datetime, zone: ZoneInfo) -> datetime | None:
        """When the window around `now` ends (UTC), or None when `now` is outside it."""
        local = now.astimezone(zone)
        moment = local.time().replace(tzinfo=None)
        if not self.contains(moment):
            return None
        day = local.date() if moment < self.end else local.date() + timedelta(days=1)
        # Built in the zone, so a DST change inside the night moves the end with the clock.
        return datetime.combine(day, self.end, tzinfo=zone).astimezone(UTC)


@functools.lru_cache(maxsize=32)
def parse_window(value: str | None) -> QuietWindow | None:
    """`"21:00-09:00"` → the window; empty, `none` or `off` → None; ValueError otherwise."""
    if value is None or value.strip().lower() in _OFF:
        return None
    match = _WINDOW.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"quiet hours must look like 21:00-09:00, not {value!r}")
    hours_start, minutes_start, hours_end, minutes_end = (int(part) for part in match.groups())
    try:
        window = QuietWindow(time(hours_start, minutes_start), time(hours_end, minutes_end))
    except ValueError:
        raise ValueError(f"quiet hours {value!r} name a time that does not exist") from None
    if window.start == window.end:
        raise ValueError(f"quiet hours {value!r} start and end at the same minute")
    return window


def parse_zone(value: str) -> ZoneInfo:
    """An IANA zone (`Europe/Moscow`); ValueError naming the value otherwise."""
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r} (e.g. Europe/Moscow)") from None


@dataclass(frozen=True, slots=True)
class Hold:
    """A notification held by quiet hours: due at `until` (UTC); the window and the local
    end name it in the journal."""

    until: datetime
    window: str
    zone: str
    local_end: str

    @property
    def reason(self) -> str:
        return f"quiet hours {self.window} ({self.zone}): held until {self.local_end} local time"

    @property
    def would_reason(self) -> str:
        """Test mode's wording: nothing is sent, so nothing is held either."""
        return (
            f"quiet hours {self.window} ({self.zone}): would be held until {self.local_end}"
            " local time"
        )


def hold(window: QuietWindow | None, zone_name: str, now: datetime) -> Hold | None:
    """The hold for a notification created at `now` in `zone_name`, or None (send now)."""
    if window is None:
        return None
    zone = parse_zone(zone_name)
    until = window.ends_after(now, zone)
    if until is None:
        return None
    return Hold(until, window.text, zone_name, f"{until.astimezone(zone):%Y-%m-%d %H:%M}")
