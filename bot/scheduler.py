"""The scheduler inside the app: periodic jobs (balance, receipts, housekeeping)."""

from __future__ import annotations

from aiohttp import web

from bot.settings import Settings


def setup_scheduler(app: web.Application, settings: Settings) -> None:
    """Add the scheduler's lifecycle to `app`."""
