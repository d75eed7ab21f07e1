"""`POST /api/v1/jobs/{name}/run`: run a scheduled job now (an extension of CONTRACT §6).

For operators (`vestnik run-job NAME` calls it): check the balance right after topping it
up, flush the e-mail outbox once SMTP is back, poll receipts. The job runs in the server
that answers, with that server's database, providers and bot.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from handlers.common.answers import Answer, answer
from handlers.common.auth import admin_only
from handlers.common.errors import ApiError
from handlers.common.keys import SCHEDULER

routes = web.RouteTableDef()


class JobRun(Answer):
    """What a job run by hand reported; a job that failed has its `error` here."""

    job: str
    result: dict[str, Any] | None
    error: str | None


@routes.post("/api/v1/jobs/{name}/run")
@admin_only
async def run_job(request: web.Request) -> web.Response:
    """Run job `name` now, outside its schedule; answers with what the job reported."""
    runner = request.app.get(SCHEDULER)
    if runner is None:
        raise ApiError(
            409,
            "conflict",
            "the scheduler does not run in this process (scheduler.enabled = false)",
        )
    name = request.match_info["name"]
    if name not in runner.job_names:
        known = ", ".join(sorted(runner.job_names))
        raise ApiError(404, "not_found", f"no job named {name!r} (jobs: {known})")
    run = await runner.run_manually(name)
    if not run.ran:
        raise ApiError(409, "conflict", f"job {name} is being run by another request right now")
    # A job that failed is still a request carried out: its error is in the answer.
    return answer(JobRun, run)
