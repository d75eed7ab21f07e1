"""What the HTTP views need from the process settings (handed in by `bot.app`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HttpContext:
    webhook_secret: str | None
    webhook_tolerance_seconds: int = 300
    webhook_max_body_bytes: int = 256 * 1024
    body_timeout_seconds: float = 30.0
    """How long a request body may take to arrive whole (`handlers.body.read_body`)."""
    admin_token: str | None = None
    public_url: str | None = None
    metrics_token: str | None = None
    """Bearer token of `GET /metrics`; None: public."""
    allowed_hosts: frozenset[str] = frozenset()
    """`Host` names served besides loopback ones (bind address, public_url host,
    http.allowed_hosts), normalised by `handlers.net.normalise_host`."""
    origin_hosts: frozenset[str] = frozenset()
    """Hosts a browser page may come from (`Origin`) besides the request's own: the
    public_url host and http.allowed_hosts."""
    erp_callbacks: bool = False
    """`erp.callback_url` is configured: events may carry `actions` (buttons to the ERP)."""
