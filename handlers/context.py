"""What the HTTP views need from the process settings (handed in by `bot.app`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HttpContext:
    webhook_secret: str | None
    webhook_tolerance_seconds: int = 300
    webhook_max_body_bytes: int = 256 * 1024
    admin_token: str | None = None
    public_url: str | None = None
