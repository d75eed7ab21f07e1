"""`vestnik serve --sandbox`: the fakes on loopback and the settings that point at them.

    sandbox = Sandbox()                              # binds the fakes' two loopback ports
    settings = sandbox.settings_for(settings)       # ConfigError off loopback
    app = create_app(settings)
    sandbox.attach(app)                              # the page, and the fakes' lifecycle

The fakes run in the app's process and event loop, and start before everything else of the
app (the bot's first getUpdates finds them listening) and stop after it. Their ports are
bound before the app is built, because the settings the app is built from name them.

The sandbox is live mode with nothing to reach beyond this machine: the bot token, the
SMS service and the Telegram API base are the fakes', SMTP and `http.public_url` are
dropped, and the server must listen on loopback. Without `webhook.secret` and `admin.token`
the ERP webhook and the admin API answer direct loopback callers only, so `vestnik
send-event` from another terminal works as it does in test mode. The journal goes to
`./vestnik-sandbox.db` unless `database.url` is set, so a sandbox run never mixes with the
journal of `vestnik serve`.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy.engine import make_url

from bot.sandbox import pages
from bot.sandbox.inbox import Inbox
from bot.sandbox.sms_gateway import CURRENCY, PATH, PRICE_PER_SEGMENT, FakeSmsGateway
from bot.sandbox.telegram_api import FakeBotApi
from bot.settings import DEFAULT_DATABASE_URL, ConfigError, Settings, TelegramSettings
from dispatch.config import SmsServiceConfig, SmtpSettings
from handlers.common.net import is_loopback_host

SANDBOX_DATABASE_URL = "sqlite+aiosqlite:///./vestnik-sandbox.db"
SMS_SERVICE = "sandbox"
SMS_SENDER = "VESTNIK"
BOT_ID = 7_000_000_001
LOOPBACK = "127.0.0.1"
DEFAULT_ADDRESS = ("127.0.0.1", 8080)
"""Where `vestnik send-event` posts by default: other addresses need its `--url`."""


def _loopback_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    return sock


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Sandbox:
    """The two fakes, their memory, and how the app is wired to them."""

    def __init__(self) -> None:
        self.inbox = Inbox()
        # aiogram insists on a token of the real shape, `<bot id>:<secret>`.
        self._telegram_token = f"{BOT_ID}:{secrets.token_urlsafe(24)}"
        self._sms_token = secrets.token_urlsafe(24)
        self.telegram = FakeBotApi(self.inbox, self._telegram_token)
        self.gateway = FakeSmsGateway(self.inbox, self._sms_token)
        self._telegram_socket = _loopback_socket()
        self._gateway_socket = _loopback_socket()

    @property
    def telegram_url(self) -> str:
        return _url(LOOPBACK, self._telegram_socket.getsockname()[1])

    @property
    def gateway_url(self) -> str:
        return _url(LOOPBACK, self._gateway_socket.getsockname()[1]) + PATH

    def settings_for(self, settings: Settings) -> Settings:
        """`settings` in live mode against the fakes; ConfigError unless on loopback."""
        if not is_loopback_host(settings.http.host):
            raise ConfigError(
                f"--sandbox listens on loopback only, not on http.host = "
                f"{settings.http.host!r}: drop --host or use --host 127.0.0.1"
            )
        database = settings.database
        if database.url == DEFAULT_DATABASE_URL:
            database = database.model_copy(update={"url": SANDBOX_DATABASE_URL})
        service = SmsServiceConfig(
            name=SMS_SERVICE,
            kind="http",
            base_url=self.gateway_url,
            token=self._sms_token,
            sender=SMS_SENDER,
            # The fake has no price API: its fixed price lets the balance count SMS at once.
            price_per_sms=PRICE_PER_SEGMENT,
        )
        notify = settings.notify.model_copy(
            update={
                "mode": "live",
                "service": "telegram",
                "reserve": "sms",
                "sms_service": SMS_SERVICE,
            }
        )
        # model_copy skips the validators on purpose: live mode without webhook.secret and
        # admin.token is sound here, where only this machine can call in or be reached.
        return settings.model_copy(
            update={
                "database": database,
                "http": settings.http.model_copy(update={"public_url": None}),
                "notify": notify,
                "sms_services": [service],
                "telegram": TelegramSettings(
                    token=self._telegram_token, api_base=self.telegram_url, mode="polling"
                ),
                "smtp": SmtpSettings(),
            }
        )

    def attach(self, app: web.Application) -> None:
        """Add the sandbox's routes to `app`, and the fakes as its first cleanup context."""
        app[pages.SANDBOX] = pages.SandboxParts(self.inbox, self.telegram, self.gateway)
        app.add_routes(pages.routes)
        app.cleanup_ctx.insert(0, self._lifecycle)

    def close(self) -> None:
        """Release the ports of fakes that never started (the app failed before)."""
        for sock in (self._telegram_socket, self._gateway_socket):
            sock.close()

    async def _lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        runners: list[web.AppRunner] = []
        try:
            for fake, sock in (
                (self.telegram.app(), self._telegram_socket),
                (self.gateway.app(), self._gateway_socket),
            ):
                runner = web.AppRunner(fake, access_log=None, shutdown_timeout=1.0)
                await runner.setup()
                runners.append(runner)
                await web.SockSite(runner, sock).start()
            yield
        finally:
            self.telegram.stop()
            for runner in reversed(runners):
                await runner.cleanup()
            self.close()

    def banner(self, settings: Settings) -> list[str]:
        """What the sandbox adds to the start-up banner, ending with the next step."""
        base = _url(settings.http.host, settings.http.port)
        database = make_url(settings.database.url).render_as_string(hide_password=True)
        send = "vestnik send-event examples/event.json"
        if (settings.http.host, settings.http.port) != DEFAULT_ADDRESS:
            send += f" --url {base}"
        journal = "vestnik journal"
        if settings.database.url == SANDBOX_DATABASE_URL:
            journal = f"VESTNIK_DATABASE__URL={SANDBOX_DATABASE_URL} {journal}"
        return [
            "Sandbox: live mode against loopback fakes of Telegram and of an SMS gateway; "
            "nothing leaves this machine.",
            f"  page:     {base}{pages.PAGE_PATH} (what each fake phone and chat received)",
            f"  as JSON:  {base}{pages.MESSAGES_PATH}",
            f"  fakes:    Telegram Bot API {self.telegram_url}, SMS gateway {self.gateway_url} "
            f"({PRICE_PER_SEGMENT} {CURRENCY} a segment)",
            f"  journal:  {database} (read it with `{journal}`)",
            f"Next: in another terminal run `{send}`, then open {base}{pages.PAGE_PATH}",
        ]
