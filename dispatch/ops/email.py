"""E-mail to the admins through the outbox: nothing is lost while SMTP is down.

An alert is written to `email_outbox` in the same transaction that decided to raise it;
`Mailer.flush()` then hands unsent e-mails to the SMTP server (aiosmtplib: plain, STARTTLS
or implicit TLS, optional AUTH) and marks each one sent as soon as the server took it. When
the server cannot be reached the e-mail stays in the outbox with its error and the next
flush (the `email` job, or the next balance check) sends it. E-mails older than
`max_age` are no longer tried (a week-old alert is noise); retention deletes them later.

Several replicas: on PostgreSQL one flush at a time holds an advisory lock, so an e-mail is
not handed to the server twice; in one process an asyncio lock does the same.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import Header
from email.message import Message
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid

import aiosmtplib

from dispatch.config import SmtpSettings
from dispatch.errors import DispatchError
from storage.database import Database
from storage.ops import alerts

logger = logging.getLogger(__name__)

# pg_try_advisory_xact_lock key of the outbox ("vestnik-email" folded into a bigint).
OUTBOX_LOCK_KEY = 0x76657374_6D61696C
FLUSH_BATCH = 20

# Failures that say nothing about one message but about the server: stop the flush there.
_SERVER_FAILURES: tuple[type[BaseException], ...] = (
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPTimeoutError,
    aiosmtplib.SMTPAuthenticationError,
    aiosmtplib.SMTPHeloError,
    aiosmtplib.SMTPNotSupported,
    OSError,
    TimeoutError,
)


class SmtpFailure(DispatchError):
    """The SMTP server did not take a message; `server_down` when it could not be used at
    all (connection, TLS, authentication), so trying further messages now is pointless."""

    def __init__(self, message: str, *, server_down: bool) -> None:
        super().__init__(message)
        self.server_down = server_down


@dataclass(frozen=True, slots=True)
class FlushTally:
    sent: int = 0
    failed: int = 0
    busy: bool = False
    """Another replica was flushing; nothing was tried."""

    def as_dict(self) -> dict[str, int | bool]:
        return {"sent": self.sent, "failed": self.failed, "busy": self.busy}


def build_message(
    *, sender: str, recipients: Sequence[str], subject: str, body: str, now: datetime
) -> Message:
    """A plain-text UTF-8 message marked as automatic (RFC 3834).

    The subject is an `email.header.Header`: the modern policy's folding of a long
    non-ASCII subject drops the space between encoded words (Python's email package puts it
    in the folding whitespace, which decoders discard), `Header` keeps it inside.
    """
    message = MIMEText(body, "plain", "utf-8")
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = Header(subject, "utf-8", header_name="Subject")  # type: ignore[assignment]
    message["Date"] = format_datetime(now)
    domain = sender.rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    return message


class Mailer:
    """Sends through the configured SMTP server and drains the outbox."""

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        db: Database,
        max_age: timedelta = timedelta(hours=72),
    ) -> None:
        self._settings = settings
        self._db = db
        self._max_age = max_age
        self._lock = asyncio.Lock()
        if settings.tls and settings.starttls:
            logger.warning("smtp: both tls and starttls are set; using implicit TLS (tls)")

    @property
    def configured(self) -> bool:
        """False when no SMTP host is set: alerts then go to Telegram only."""
        return bool(self._settings.host)

    async def send(
        self, recipients: Sequence[str], subject: str, body: str, *, now: datetime
    ) -> None:
        """Hand one message to the server; raises SmtpFailure."""
        settings = self._settings
        if not settings.host:
            raise SmtpFailure("no SMTP server is configured (smtp.host)", server_down=True)
        message = build_message(
            sender=settings.from_, recipients=recipients, subject=subject, body=body, now=now
        )
        implicit = settings.tls
        try:
            await aiosmtplib.send(
                message,
                sender=settings.from_,
                recipients=list(recipients),
                hostname=settings.host,
                port=settings.port,
                username=settings.username,
                password=(settings.password or "") if settings.username else None,
                use_tls=implicit,
                start_tls=settings.starttls and not implicit,
                timeout=settings.timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError) as exc:
            raise SmtpFailure(
                _describe(exc), server_down=isinstance(exc, _SERVER_FAILURES)
            ) from exc

    async def flush(self, now: datetime) -> FlushTally:
        """Send what the outbox holds (oldest first); never raises for SMTP trouble."""
        if not self.configured:
            return FlushTally()
        async with self._lock:
            if self._db.dialect != "postgresql":
                return await self._flush_rows(now)
            async with self._db.sessions() as guard, guard.begin():
                if not await alerts.try_outbox_lock(guard, OUTBOX_LOCK_KEY):
                    return FlushTally(busy=True)
                return await self._flush_rows(now)

    async def _flush_rows(self, now: datetime) -> FlushTally:
        async with self._db.sessions() as session:
            rows = await alerts.pending_emails(
                session, created_since=now - self._max_age, limit=FLUSH_BATCH
            )
        sent = failed = 0
        for row in rows:
            try:
                await self.send(row.recipients, row.subject, row.body, now=now)
            except SmtpFailure as exc:
                failed += 1
                logger.warning(
                    "e-mail #%s to %s not sent (attempt %d): %s",
                    row.id,
                    ", ".join(row.recipients),
                    row.attempts + 1,
                    exc,
                )
                async with self._db.transaction() as session:
                    await alerts.mark_failed(session, row.id, error=str(exc))
                if exc.server_down:
                    break
                continue
            async with self._db.transaction() as session:
                await alerts.mark_sent(session, row.id, now=now)
            sent += 1
            logger.info("e-mail #%s sent to %s", row.id, ", ".join(row.recipients))
        return FlushTally(sent=sent, failed=failed)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
