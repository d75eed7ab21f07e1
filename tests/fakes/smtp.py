"""A real SMTP server on loopback (aiosmtpd), in the test's own event loop.

    async with FakeSmtp() as smtp:                       # plain SMTP, no auth
        ...  # point smtp.host / smtp.port at it
        [mail] = await smtp.wait_for(1)
        assert "баланс" in mail.subject

Modes: `plain`; `starttls` (the server offers STARTTLS and refuses mail without it);
`tls` (implicit TLS from the first byte). TLS modes need `tls=make_tls(tmp_path)`: a CA
and a server certificate for 127.0.0.1 made by `trustme` in the test, with the CA file the
client must trust (set `SSL_CERT_FILE` to it: aiosmtplib's default context then verifies
the server against it and nothing else).

`credentials=(user, password)` turns on AUTH (PLAIN / LOGIN) and refuses mail from an
unauthenticated client. Outages: `await smtp.stop()` closes the listening socket
(connection refused) and `await smtp.start()` reopens it on the same port;
`smtp.fail_next(451, times=n)` answers the next DATA commands with an error instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import logging
import ssl
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, Literal, Self

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

Mode = Literal["plain", "starttls", "tls"]

# aiosmtpd logs every session at INFO and warns about AUTH without TLS, which the plain
# mode does on purpose; only its errors are worth a test's output.
logging.getLogger("mail.log").setLevel(logging.ERROR)


@dataclass(frozen=True)
class TlsFiles:
    """A server TLS context and the CA file a client must trust to verify it."""

    server_context: ssl.SSLContext
    ca_file: Path


def make_tls(directory: Path) -> TlsFiles:
    """A fresh CA and a certificate for 127.0.0.1 / localhost (no network, no files but
    the CA's PEM in `directory`)."""
    import trustme

    ca = trustme.CA()
    certificate = ca.issue_cert("127.0.0.1", "localhost")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(server_context)
    ca_file = directory / "smtp-test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return TlsFiles(server_context=server_context, ca_file=ca_file)


@dataclass
class ReceivedMail:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    """The message came over an encrypted connection (STARTTLS or implicit TLS)."""
    auth_user: str | None
    at: float = field(default_factory=time.monotonic)

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def to(self) -> str:
        return str(self.message["To"])

    @property
    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None, "no text/plain part"
        return str(part.get_content())


class _Handler:
    def __init__(self, owner: FakeSmtp) -> None:
        self._owner = owner

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self._owner._accept(server, session, envelope)


class FakeSmtp:
    """The SMTP server; `received` holds what it accepted, `connections` counts clients."""

    def __init__(
        self,
        *,
        mode: Mode = "plain",
        tls: TlsFiles | None = None,
        credentials: tuple[str, str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        if mode != "plain" and tls is None:
            raise ValueError(f"mode {mode!r} needs tls=make_tls(...)")
        self.mode = mode
        self.tls = tls
        self.credentials = credentials
        self.host = host
        self.port = 0
        self.received: list[ReceivedMail] = []
        self.refused: list[str] = []
        self.auth_failures = 0
        self.connections = 0
        self._failures: deque[tuple[int, str]] = deque()
        self._server: asyncio.Server | None = None
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> Self:
        """Listen (again, on the same port after `stop()`)."""
        loop = asyncio.get_running_loop()
        handler = _Handler(self)
        server_context = self.tls.server_context if self.tls is not None else None

        def factory() -> SMTP:
            self.connections += 1
            with warnings.catch_warnings():
                # AUTH without TLS is what the plain mode tests on purpose.
                warnings.simplefilter("ignore")
                return SMTP(
                    handler,
                    hostname="smtp.vestnik.test",
                    tls_context=server_context if self.mode == "starttls" else None,
                    require_starttls=self.mode == "starttls",
                    authenticator=self._authenticate if self.credentials else None,
                    auth_required=self.credentials is not None,
                    auth_require_tls=False,
                    timeout=10,
                    loop=loop,
                )

        self._server = await loop.create_server(
            factory,
            host=self.host,
            port=self.port,
            ssl=server_context if self.mode == "tls" else None,
            reuse_address=True,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        """Stop listening: new connections are refused until `start()`."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ test controls

    def settings(self, **extra: Any) -> dict[str, Any]:
        """The `[smtp]` section that points Vestnik here."""
        section: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "from": "vestnik@shop.test",
            "starttls": self.mode == "starttls",
            "tls": self.mode == "tls",
            "timeout_seconds": 5,
        }
        if self.credentials is not None:
            section["username"], section["password"] = self.credentials
        section.update(extra)
        return section

    def fail_next(self, code: int = 451, text: str = "try again later", times: int = 1) -> None:
        """Answer the next `times` DATA commands with `code text` (4xx or 5xx)."""
        self._failures.extend([(code, text)] * times)

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMail]:  # noqa: ASYNC109
        """Return once at least `count` messages were accepted; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                subjects = [mail.subject for mail in self.received]
                raise TimeoutError(f"expected {count} message(s), got {subjects}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return list(self.received)

    # ------------------------------------------------------------------ server side

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.credentials is not None
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            if (user, password) == self.credentials:
                return AuthResult(success=True, auth_data=user)
        self.auth_failures += 1
        return AuthResult(success=False, handled=False)

    def _accept(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._failures:
            code, text = self._failures.popleft()
            self.refused.append(str(envelope.mail_from))
            return f"{code} {text}"
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = email.message_from_bytes(raw, policy=default_policy)
        assert isinstance(message, EmailMessage)
        transport = server.transport
        encrypted = session.ssl is not None or (
            transport is not None and transport.get_extra_info("ssl_object") is not None
        )
        self.received.append(
            ReceivedMail(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                message=message,
                tls=encrypted,
                auth_user=session.auth_data if session.authenticated else None,
            )
        )
        self._changed.set()
        return "250 OK: queued"
