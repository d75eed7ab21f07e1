"""Balance: every SMS service's balance report now (the report of `GET /api/v1/balance`)
and the history of the balance job's checks as a chart."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from aiohttp import web

from dispatch.delivery.channels.sms.base import ProviderError, SmsProvider
from dispatch.ops.balance import balance_report
from handlers.common.keys import DB, RUNTIME_CONFIG, SMS_PROVIDERS
from handlers.desk.admin.access import admin
from handlers.desk.admin.chart import line_chart
from handlers.desk.pages import page, render
from storage.desk.balance_history import checks_since
from storage.types import utcnow

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

PATH = "/desk/balance"
HISTORY_DAYS = 30
READ_WAIT_SECONDS = 5.0
"""A provider that does not answer in time is shown as unread; the page does not wait."""
RECENT_ROWS = 10


async def _report(request: web.Request, provider: SmsProvider, notify: Any) -> dict[str, Any]:
    try:
        report = await asyncio.wait_for(
            balance_report(provider, notify, db=request.app[DB]), READ_WAIT_SECONDS
        )
    except (ProviderError, TimeoutError) as exc:
        logger.info("balance of %s not read for the desk: %s", provider.name, exc)
        return {"service": provider.name, "kind": provider.kind, "error": str(exc) or "timeout"}
    return {**report.as_dict(), "error": None}


@routes.get(PATH)
@page
async def balance(request: web.Request) -> web.StreamResponse:
    user = await admin(request)
    db = request.app[DB]
    providers = await request.app[SMS_PROVIDERS].refresh(db)
    async with db.sessions() as session:
        notify = (await request.app[RUNTIME_CONFIG].current(session)).notify
    reports = await asyncio.gather(
        *(_report(request, provider, notify) for provider in providers.values())
    )
    since = utcnow() - timedelta(days=HISTORY_DAYS)
    services = []
    async with db.sessions() as session:
        for report in reports:
            checks = await checks_since(session, report["service"], since)
            readings = [(c.checked_at, c.balance) for c in checks if c.balance is not None]
            services.append(
                {
                    "report": report,
                    "chart": line_chart(readings),
                    "recent": list(reversed(checks[-RECENT_ROWS:])),
                    "checks": len(checks),
                    "failed": sum(1 for c in checks if c.balance is None),
                }
            )
    return render(
        "balance.html.j2", user=user, section="balance", services=services, days=HISTORY_DAYS
    )
