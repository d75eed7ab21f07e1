"""The quiet-hours rule (dispatch/intake/quiet_hours.py) and its settings: a window that
crosses midnight, one that does not, the zone's own clock, and the one-line refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from dispatch.config import NotifySettings
from dispatch.intake.quiet_hours import hold, parse_window


def at(hour: int, minute: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "until"),
    [
        (at(17, 59), None),  # 20:59 in Moscow: not yet
        (at(18, 0), at(6, day=3)),  # 21:00: from the first minute
        (at(23, 30), at(6, day=3)),  # 02:30 next day: after midnight
        (at(5, 59), at(6)),  # 08:59: the same morning
        (at(6, 0), None),  # 09:00: over
    ],
)
def test_a_window_across_midnight(now: datetime, until: datetime | None) -> None:
    found = hold(parse_window("21:00-09:00"), "Europe/Moscow", now)
    assert (found.until if found else None) == until


def test_a_window_within_one_day_and_its_reason() -> None:
    window = parse_window("13:00-14:30")
    assert hold(window, "UTC", at(12, 59)) is None
    found = hold(window, "UTC", at(13, 10))
    assert found is not None and found.until == at(14, 30)
    assert found.reason == "quiet hours 13:00-14:30 (UTC): held until 2026-12-02 14:30 local time"


@pytest.mark.parametrize("off", [None, "", "none", "Off"])
def test_an_empty_window_is_off(off: str | None) -> None:
    assert NotifySettings(quiet_hours=off).quiet_hours is None
    assert hold(parse_window(off), "Europe/Moscow", at(20)) is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("quiet_hours", "21-09", "must look like 21:00-09:00"),
        ("quiet_hours", "25:00-09:00", "a time that does not exist"),
        ("quiet_hours", "09:00-09:00", "start and end at the same minute"),
        ("timezone", "Moscow", "unknown IANA time zone 'Moscow'"),
    ],
)
def test_bad_settings_are_refused_by_name(field: str, value: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        NotifySettings.model_validate({field: value})
    assert message in str(caught.value)
    assert field in str(caught.value)


def test_a_window_is_kept_in_one_spelling() -> None:
    assert NotifySettings(quiet_hours=" 9:00 - 18:30 ").quiet_hours == "09:00-18:30"
