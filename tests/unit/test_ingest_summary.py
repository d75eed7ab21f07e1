"""The ingest log: one INFO summary per window with events, each event at DEBUG only."""

from __future__ import annotations

import asyncio
import logging

import pytest

from dispatch.intake.ingest import IngestResult, NotificationSummary, _IngestSummary


def _result(duplicate: bool, notifications: int) -> IngestResult:
    summary = NotificationSummary(id=1, recipient="client", channel="sms", status="test")
    return IngestResult("evt", duplicate, [summary] * notifications)


async def test_one_summary_line_counts_the_window_then_starts_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    summary = _IngestSummary(0.05)
    with caplog.at_level(logging.INFO, logger="dispatch.intake.ingest"):
        for _ in range(3):
            summary.count(_result(False, 2))
        summary.count(_result(True, 2))
        await asyncio.sleep(0.15)
        summary.count(_result(False, 1))
        await asyncio.sleep(0.15)
        await asyncio.sleep(0.15)  # an idle window logs nothing

    lines = [r.getMessage() for r in caplog.records if r.name == "dispatch.intake.ingest"]
    assert lines == [
        "ERP events in the last 0.05 s: 3 accepted (6 notification(s)), 1 duplicate(s)",
        "ERP events in the last 0.05 s: 1 accepted (1 notification(s)), 0 duplicate(s)",
    ]
