"""An operator runs a scheduled job now: `POST /api/v1/jobs/{name}/run` (and `vestnik run-job`)."""

from __future__ import annotations

from decimal import Decimal

from bot.cli.main import JOB_NAMES
from handlers.common.keys import SCHEDULER
from tests.conftest import Service, make_settings, start_service
from tests.fakes.sms_http import FakeHttpGateway


async def test_the_balance_is_checked_now_and_twice_in_a_row(
    live_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    """Right after a top-up the operator wants the new figure, not the one of the slot."""
    sms_gateway.balance = Decimal("1234.50")

    first_status, first = await live_service.admin("POST", "/api/v1/jobs/balance/run")
    sms_gateway.balance = Decimal("99.00")
    second_status, second = await live_service.admin("POST", "/api/v1/jobs/balance/run")

    assert (first_status, second_status) == (200, 200), (first, second)
    assert first["job"] == "balance" and first["error"] is None
    assert "1234.5" in str(first["result"])
    assert "99" in str(second["result"])  # a second manual run in the same minute runs too


async def test_unknown_jobs_and_strangers_are_refused(live_service: Service) -> None:
    status, body = await live_service.admin("POST", "/api/v1/jobs/reboot/run")
    assert status == 404 and body["error"]["code"] == "not_found"
    assert "expire_confirmations" in body["error"]["message"]

    status, body = await live_service.admin("POST", "/api/v1/jobs/balance/run", token="wrong")
    assert status == 401


async def test_without_a_scheduler_in_this_process_it_says_so(database_url: str) -> None:
    service = await start_service(make_settings(database_url, scheduler={"enabled": False}))
    try:
        status, body = await service.admin("POST", "/api/v1/jobs/balance/run")
    finally:
        await service.client.close()
    assert status == 409
    assert body["error"]["code"] == "conflict"
    assert "scheduler.enabled" in body["error"]["message"]


async def test_the_cli_knows_every_job_of_the_scheduler(live_service: Service) -> None:
    assert sorted(JOB_NAMES) == sorted(live_service.app[SCHEDULER].job_names)
