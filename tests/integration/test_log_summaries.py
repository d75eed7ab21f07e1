"""The log under load: one INFO summary per window, single events and sends at DEBUG only."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.conftest import live_settings, make_settings, start_service
from tests.events import make_event
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram

WINDOW = {"log": {"ingest_summary_seconds": 0.2}}


def _messages(caplog: pytest.LogCaptureFixture, logger: str, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno == level]


async def test_erp_events_are_counted_in_one_line_per_window(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    service = await start_service(make_settings(database_url, **WINDOW))
    try:
        with caplog.at_level(logging.DEBUG, logger="dispatch.intake.ingest"):
            for index in range(3):  # each: one notification to the client
                status, _ = await service.post_event(make_event(event_id=f"sum-{index}"))
                assert status == 202
            status, _ = await service.post_event(make_event(event_id="sum-0"))
            assert status == 200  # the ERP's retry of the first one
            await asyncio.sleep(0.5)
            status, _ = await service.post_event(make_event(event_id="sum-3"))
            await asyncio.sleep(0.5)
            await asyncio.sleep(0.4)  # an idle window writes nothing
    finally:
        await service.client.close()
    assert _messages(caplog, "dispatch.intake.ingest", logging.INFO) == [
        "ERP events in the last 0.2 s: 3 accepted (3 notification(s)), 1 duplicate(s)",
        "ERP events in the last 0.2 s: 1 accepted (1 notification(s)), 0 duplicate(s)",
    ]


async def test_sends_are_counted_and_only_failures_keep_their_own_info_line(
    database_url: str,
    telegram: FakeTelegram,
    sms_gateway: FakeHttpGateway,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = live_settings(database_url, telegram, sms_gateway, **WINDOW)
    service = await start_service(settings)
    logger = "dispatch.delivery.service"
    try:
        with caplog.at_level(logging.DEBUG, logger=logger):
            for index in range(2):
                status, _ = await service.post_event(make_event(event_id=f"sent-{index}"))
                assert status == 202
            for _ in range(100):
                if len(sms_gateway.sent) == 2:
                    break
                await asyncio.sleep(0.05)
            assert len(sms_gateway.sent) == 2  # the client is not subscribed: SMS
            sms_gateway.fail_next("invalid_number")
            status, _ = await service.post_event(make_event(event_id="refused"))
            await asyncio.sleep(0.6)
    finally:
        await service.client.close()
    infos = _messages(caplog, logger, logging.INFO)
    summaries = [line for line in infos if line.startswith("delivery attempts")]
    assert summaries == ["delivery attempts in the last 0.2 s: sms permanent 1, sms sent 2"]
    [refused] = [line for line in infos if line.startswith("sms ")]
    assert "+7916***4567 via main: permanent" in refused
    sends = [m for m in _messages(caplog, logger, logging.DEBUG) if m.startswith("sms ")]
    assert len(sends) == 2
    assert all(": sent " in line and "+7916***4567" in line for line in sends)
