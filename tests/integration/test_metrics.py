"""/metrics shows what happened, with live values."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from handlers.common.keys import METRICS
from storage.database import create_database
from storage.models import Notification
from storage.types import utcnow
from tests.bulk import seed_pending
from tests.conftest import Service, make_settings, start_service
from tests.events import make_event
from tests.fakes.sms_http import FakeHttpGateway
from tests.fakes.telegram import FakeTelegram


async def scrape(service: Service) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await service.client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_follow_events_deliveries_and_errors(
    live_service: Service, telegram: FakeTelegram, sms_gateway: FakeHttpGateway
) -> None:
    event = make_event("client_order.ready", event_id="m-1")
    status, body = await live_service.post_event(event)
    assert status == 202
    await live_service.post_event(event)  # duplicate
    await live_service.post_event(make_event("payment.registered"), secret="wrong")  # 401
    await live_service.wait_for_status(body["notifications"][0]["id"], "sent")

    await live_service.admin("PUT", "/api/v1/clients/C-1001", json_body={"name": "ООО Ромашка"})
    await live_service.link_chat(4242, client_id="C-1001")
    telegram.fail_next("sendMessage", error="retry_after", retry_after=1)
    sms_gateway.fail_next("server_error")
    _, second = await live_service.post_event(make_event("client_order.ready", event_id="m-2"))
    await live_service.wait_for_status(second["notifications"][0]["id"], "sent")

    samples = await scrape(live_service)
    assert (
        value(samples, "vestnik_events_total", type="client_order.ready", result="accepted") == 2
    )
    assert (
        value(samples, "vestnik_events_total", type="client_order.ready", result="duplicate") == 1
    )
    assert value(samples, "vestnik_events_total", type="unknown", result="invalid_signature") == 1
    assert value(samples, "vestnik_notifications", status="sent", channel="sms") == 1
    assert value(samples, "vestnik_notifications", status="sent", channel="telegram") == 1
    assert value(samples, "vestnik_delivery_latency_seconds_count", channel="sms") == 1
    assert value(samples, "vestnik_delivery_latency_seconds_count", channel="telegram") == 1
    assert value(samples, "vestnik_telegram_429_total") == 1
    assert (
        value(
            samples,
            "vestnik_provider_errors_total",
            channel="telegram",
            provider="telegram",
            kind="rate_limit",
        )
        == 1
    )
    assert (
        value(samples, "vestnik_delivery_attempts_total", channel="telegram", outcome="retry") == 1
    )
    assert value(samples, "vestnik_queue_due") == 0
    assert value(samples, "vestnik_queue_oldest_due_age_seconds") == 0


async def test_queue_depth_and_age_of_the_oldest_due_notification(database_url: str) -> None:
    seeded = await seed_pending(database_url, count=3)
    db = create_database(database_url)
    async with db.transaction() as session:
        await session.execute(
            update(Notification)
            .where(Notification.id == seeded.notification_ids[0])
            .values(next_attempt_at=utcnow() - timedelta(seconds=90))
        )
    await db.dispose()
    service = await start_service(make_settings(database_url), run_workers=False)
    try:
        samples = await scrape(service)
        assert value(samples, "vestnik_queue_due") == 3
        assert value(samples, "vestnik_queue_oldest_due_age_seconds") >= 90
        assert value(samples, "vestnik_notifications", status="pending", channel="sms") == 3

        # The process's own counters are still served while the database is down.
        await service.db.engine.dispose()
        broken = create_database(
            "postgresql+asyncpg://postgres@127.0.0.1:1/none"
            if service.db.dialect == "postgresql"
            else "sqlite+aiosqlite:////nonexistent-dir/x.db"
        )
        service.db.engine, service.db.sessions = broken.engine, broken.sessions
        service.app[METRICS]._journal_read_at = 0.0  # force a new reading
        response = await service.client.get("/metrics")
        assert response.status == 200
        assert "vestnik_events_total" in await response.text()
    finally:
        await service.client.close()


async def test_sms_balance_gauge_shows_the_schedulers_last_reading(
    live_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    from decimal import Decimal

    from handlers.common.keys import SCHEDULER

    sms_gateway.balance = Decimal("84.75")
    await live_service.app[SCHEDULER].run_job_now("balance")
    samples = await scrape(live_service)
    assert value(samples, "vestnik_sms_balance", provider="main", currency="RUB") == 84.75
