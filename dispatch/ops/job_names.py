"""The names of the scheduled jobs: the one list the scheduler's job table, the CLI's
`run-job` choices and the admin API's description share.

Kept free of imports so the CLI can build its `--help` without loading the application.
"""

from __future__ import annotations

from enum import StrEnum


class JobName(StrEnum):
    BALANCE = "balance"
    """Reads, stores and alerts on the SMS balance."""
    RECEIPTS = "receipts"
    """Early receipts; polls status endpoints for sent SMS."""
    EMAIL = "email"
    """Sends e-mails left in the outbox (SMTP was down)."""
    RETENTION = "retention"
    """Deletes journal rows older than `retention_days`."""
    EXPIRE_CONFIRMATIONS = "expire_confirmations"
    """Cancels stale confirmations; sends prompts nobody got."""
