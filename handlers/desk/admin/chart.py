"""A line chart as inline SVG, drawn on the server: the desk has no charting script, and
the page must show it without JavaScript."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

WIDTH, HEIGHT = 600, 180
LEFT, RIGHT, TOP, BOTTOM = 8, 8, 12, 12


@dataclass(frozen=True, slots=True)
class Chart:
    points: str
    """The polyline's `x,y x,y …`, left to right in time."""
    dots: tuple[tuple[float, float], ...]
    low: Decimal
    high: Decimal
    first: datetime
    last: datetime
    width: int = WIDTH
    height: int = HEIGHT


def line_chart(readings: Sequence[tuple[datetime, Decimal]]) -> Chart | None:
    """The readings (oldest first) scaled into the chart: time across, the value up from
    zero (a balance is read against nothing, so the axis starts at 0); None without any."""
    if not readings:
        return None
    first, last = readings[0][0], readings[-1][0]
    span = (last - first).total_seconds() or 1.0
    high = max(max(value for _, value in readings), Decimal(0))
    low = min(min(value for _, value in readings), Decimal(0))
    rise = float(high - low) or 1.0
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    dots = tuple(
        (
            round(LEFT + inner_w * ((at - first).total_seconds() / span), 1),
            round(TOP + inner_h * (1 - float(value - low) / rise), 1),
        )
        for at, value in readings
    )
    if len(dots) == 1:  # one reading: a level line across
        dots = ((LEFT, dots[0][1]), (WIDTH - RIGHT, dots[0][1]))
    points = " ".join(f"{x:g},{y:g}" for x, y in dots)
    return Chart(points, dots, low, high, first, last)
