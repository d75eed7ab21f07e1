"""Process settings: a TOML file overridden by `VESTNIK_<SECTION>__<KEY>` variables.

With neither, everything has a default that runs: SQLite `./vestnik.db`, HTTP on
127.0.0.1:8080, notify mode `test`, no bot.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from bot.config_errors import (
    ENV_DELIMITER,
    ENV_PREFIX,
    check_environment,
    describe_json_variable,
    describe_validation_error,
)
from bot.errors import BotError
from dispatch.catalogue import EVENT_TYPES
from dispatch.config import (
    DeliverySettings,
    ErpSettings,
    EventTypeOverride,
    NotifySettings,
    SchedulerSettings,
    SmsServiceConfig,
    SmsTestSettings,
    SmtpSettings,
    TemplatesSettings,
)
from handlers.common.net import is_loopback_host

DEFAULT_CONFIG_FILE = Path("vestnik.toml")
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./vestnik.db"
TELEGRAM_API_BASE = "https://api.telegram.org"

# The TOML path of the `load()` call in progress; pydantic-settings builds sources per class,
# so this is how one call hands its file to `settings_customise_sources`.
_config_file: ContextVar[Path | None] = ContextVar("vestnik_config_file", default=None)


class ConfigError(BotError):
    """The configuration cannot be used; the message says what to fix."""


class _Section(BaseModel):
    # The docstring under a field is its description (docs/CONFIGURATION.md is made of them).
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


#: The URLs Vestnik can use: its drivers are asyncio ones.
DATABASE_URL_FORMS = (
    "sqlite+aiosqlite:///PATH/vestnik.db or postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DB"
)
_URL_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>[^\s]*)")
_URL_PASSWORD_RE = re.compile(r"^([^:/]*):[^@]*@")
# SQLAlchemy's own reading of what follows `://` (sqlalchemy.engine.url), for the port it
# would fail to convert: [user[:password]@][host or [ipv6]][:port][/database].
_URL_PORT_RE = re.compile(r"(?:[^:/]*(?::[^@]*)?@)?(?:\[[^/?]+\]|[^/:?]+)?(?::(?P<port>[^/?]*))?")


def _check_database_url(url: str) -> str:
    """Refuse, with the fix, a URL whose driver Vestnik does not have (`postgres://`,
    psycopg's `postgresql://`, the blocking `sqlite://`) before anything tries to load it."""
    match = _URL_RE.fullmatch(url)
    if match is None:
        raise ValueError(f"not a database URL; use {DATABASE_URL_FORMS}")
    backend, _, driver = match["scheme"].lower().partition("+")
    # Shown without its password: the line goes to a terminal and to logs.
    rest = _URL_PASSWORD_RE.sub(r"\1:***@", match["rest"])
    if backend in ("postgres", "postgresql") and driver != "asyncpg":
        raise ValueError(
            f"use postgresql+asyncpg://{rest} (Vestnik talks to PostgreSQL through asyncpg; "
            f"{match['scheme']}:// needs a driver it does not have)"
        )
    if backend == "sqlite" and driver != "aiosqlite":
        raise ValueError(
            f"use sqlite+aiosqlite://{rest} (Vestnik opens SQLite through aiosqlite; "
            f"{match['scheme']}:// needs a driver it does not have)"
        )
    if backend not in ("postgresql", "sqlite"):
        raise ValueError(
            f"{match['scheme']}:// is not a database Vestnik uses; use {DATABASE_URL_FORMS}"
        )
    port = _URL_PORT_RE.match(match["rest"])
    if port and port["port"] is not None and not port["port"].isdigit():
        raise ValueError(f"the port {port['port']!r} is not a number; use {DATABASE_URL_FORMS}")
    return url


class DatabaseSettings(_Section):
    """Where the journal, the queue and the directory live."""

    url: Annotated[str, AfterValidator(_check_database_url)] = DEFAULT_DATABASE_URL
    """SQLAlchemy URL: `sqlite+aiosqlite:///./vestnik.db` or
    `postgresql+asyncpg://user:password@host:5432/db`."""
    pool_size: int = Field(default=10, ge=1, le=200)
    """PostgreSQL connections per process (plus as many overflow)."""
    echo: bool = False
    """Log every SQL statement (debugging only)."""
    ingest_flushers: int = Field(default=1, ge=1, le=16)
    """Batches of ERP events written at once on PostgreSQL, each on its own connection
    (SQLite: always 1). On 2 cores `bench/ingest.py` measured 1 fastest (ratio to its
    ceiling 0.82-0.90, against 0.63-0.81 for 2 and 0.55-0.59 for 4); more may pay with more
    cores. Keep it at most half of `pool_size`, so workers and the admin API keep
    connections."""


#: Shortest token or shared secret accepted: a short one can be guessed over the network.
MIN_SECRET_CHARS = 16


def _secret_value(value: Any) -> Any:
    """Blank is "not configured" (`VESTNIK_ADMIN__TOKEN=` in a .env); shorter than
    `MIN_SECRET_CHARS` is refused at load."""
    if isinstance(value, str):
        if not value.strip():
            return None
        if len(value) < MIN_SECRET_CHARS:
            raise ValueError(
                f"must be at least {MIN_SECRET_CHARS} characters long (it has {len(value)}); "
                "generate one with `openssl rand -hex 32`"
            )
    return value


Secret = Annotated[str | None, BeforeValidator(_secret_value)]
"""A token or shared secret: None (not configured) or at least `MIN_SECRET_CHARS` long."""

#: What Telegram accepts as a webhook `secret_token` (1-256 of these characters), with our
#: own minimum length. The one place of this rule: the webhook setup relies on it.
TELEGRAM_SECRET_RE = re.compile(rf"[A-Za-z0-9_-]{{{MIN_SECRET_CHARS},256}}")


def _telegram_secret_chars(value: str | None) -> str | None:
    if value is not None and not TELEGRAM_SECRET_RE.fullmatch(value):
        raise ValueError(f"must be {MIN_SECRET_CHARS}-256 characters of A-Z, a-z, 0-9, _ and -")
    return value


TelegramSecret = Annotated[Secret, AfterValidator(_telegram_secret_chars)]
"""A `Secret` that Telegram accepts as the `X-Telegram-Bot-Api-Secret-Token`."""


class HttpSettings(_Section):
    """The HTTP server of `vestnik serve`."""

    host: str = "127.0.0.1"
    """Listen address of `vestnik serve` (`0.0.0.0` in a container)."""
    port: int = Field(default=8080, ge=0, le=65535)
    """Listen port of `vestnik serve`."""
    public_url: str | None = None
    """The address the outside world uses (Telegram webhook, provider callbacks)."""
    allowed_hosts: list[str] = Field(default_factory=list)
    """More names the `Host` header may carry (e.g. `["vestnik"]` for scrapes inside a
    compose network). Always allowed: loopback names, `host` (unless 0.0.0.0 / ::) and
    the host of `public_url`; any other `Host` is refused with 421 (DNS rebinding)."""
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=3600)
    """A connection that has not sent a complete request head (request line and headers)
    within this many seconds of connecting, or of the first byte of its next request, is
    closed (slowloris)."""
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    """A request body (ERP event, delivery receipt, admin JSON) must arrive whole within
    this many seconds of the handler starting to read it, else 408 `request_timeout` and
    the connection is closed."""
    keepalive_timeout_seconds: float = Field(default=75.0, gt=0, le=3600)
    """An idle keep-alive connection is closed after this many seconds; keep it longer
    than the proxy's upstream keep-alive (30 s in the compose Caddyfile)."""
    max_connections: int = Field(default=1000, ge=16, le=1_000_000)
    """Open connections at most (lowered to the process's open-file limit minus 128 kept
    for the database, outgoing calls and logs). At the cap, the oldest connection that is
    not inside a request (idle, or still sending its head) is closed for the new one;
    when every connection is inside a request, the new one is closed at once."""
    processes: int = Field(default=1, ge=1, le=64)
    """Server processes of `vestnik serve` sharing the port (SO_REUSEPORT; `--workers N`
    overrides): one Python process uses about one core, so ingest scales with processes up
    to the number of cores. More than 1 needs PostgreSQL. Only the first process long-polls
    Telegram, and each process sends at 1/N of the configured send rates."""


class WebhookSettings(_Section):
    """The ERP webhook `POST /api/v1/events` (signed Stripe-style)."""

    secret: Secret = None
    """HMAC-SHA256 secret shared with the ERP (`X-Vestnik-Signature`), at least 16
    characters; required in `live` mode. Without it unsigned events are accepted from
    direct loopback callers only (none relayed by a proxy)."""
    tolerance_seconds: int = Field(default=300, ge=1)
    """Signatures older or newer than this are refused (replays)."""
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    """Larger event bodies are refused with 413."""


class AdminSettings(_Section):
    """The admin API (`/api/v1/...`, bearer token)."""

    token: Secret = None
    """Bearer token of the admin API, at least 16 characters; required in `live` mode, with
    `http.public_url` or a non-loopback `http.host`. Without it the admin API answers direct
    loopback callers only (none carrying Forwarded, X-Forwarded-*, X-Real-IP or Via)."""


class MetricsSettings(_Section):
    """`GET /metrics` (Prometheus text format)."""

    token: Secret = None
    """Bearer token a scraper must send (`authorization` in Prometheus' scrape config);
    without one `/metrics` is public, as the contract lists it."""


class TelegramSettings(_Section):
    """The Telegram bot."""

    token: str | None = None
    """The bot's token from @BotFather; without it there is no bot and the reserve SMS route
    applies."""
    api_base: str = TELEGRAM_API_BASE
    """The Bot API server (Telegram's, a local Bot API server, a test fake)."""
    mode: Literal["polling", "webhook"] = "polling"
    """`polling` (getUpdates; one replica only) or `webhook` (needs `http.public_url`; every
    replica serves it)."""
    webhook_secret: TelegramSecret = None
    """`X-Telegram-Bot-Api-Secret-Token` of webhook calls (16-256 of A-Z a-z 0-9 _ -);
    default: derived from the token."""
    webhook_path: str = "/telegram/webhook"
    """Path of the webhook route, appended to `http.public_url`."""

    def secret_token(self) -> str:
        """The webhook's secret: `webhook_secret`, or one derived from the token (the same
        on every replica)."""
        if self.webhook_secret:
            return self.webhook_secret
        assert self.token
        return hmac.new(
            self.token.encode(), b"vestnik telegram webhook", hashlib.sha256
        ).hexdigest()

    def webhook_route(self) -> str:
        """The webhook's route in this app: `webhook_path` with its leading slash."""
        path = self.webhook_path
        return path if path.startswith("/") else "/" + path


class DeskSettings(_Section):
    """The web desk `/desk/`: the journal in a browser for admins and managers."""

    secret: Secret = None
    """Key that signs the desk's session cookies, at least 16 characters; default: derived
    from admin.token, else from telegram.token (without any of them nobody can sign in).
    Changing it, or the admin token it is derived from, signs everyone out."""
    session_hours: float = Field(default=12.0, gt=0, le=24 * 31)
    """A desk session ends this many hours after sign-in."""
    link_minutes: int = Field(default=10, ge=1, le=60)
    """How long the one-time sign-in link of the bot's `/desk` stays valid."""
    live_seconds: float = Field(default=2.0, ge=0.1, le=60)
    """How often an open journal page looks for new rows and status changes (changes made
    in this process show at once)."""


class LogSettings(_Section):
    """Logging (see README, Operations)."""

    level: str = "INFO"
    """`DEBUG`, `INFO`, `WARNING` or `ERROR`."""
    format: Literal["text", "json"] = "text"
    """`text` (readable lines) or `json` (one JSON object per line)."""
    ingest_summary_seconds: float = Field(default=60.0, gt=0, le=86400)
    """ERP events and successful sends are logged one by one at DEBUG only; at INFO, one
    summary line each per this many seconds that had any (events accepted, their
    notifications and duplicates; delivery attempts by channel and outcome). Failed sends
    keep their own INFO line."""


class Settings(BaseSettings):
    """Everything `create_app()` needs."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        extra="forbid",
        validate_default=True,
        use_attribute_docstrings=True,
    )

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    erp: ErpSettings = Field(default_factory=ErpSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    sms_services: list[SmsServiceConfig] = Field(default_factory=list)
    """The directory «Сервисы отправки сообщений»: one `[[sms_services]]` table per
    service."""
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    test_sms: SmsTestSettings = Field(default_factory=SmsTestSettings)
    event_types: dict[str, EventTypeOverride] = Field(default_factory=dict)
    """Per event type (`[event_types."client_order.ready"]` …): the seed's «Шаблоны» flags
    and templates; a key left out keeps the type's own default. Also editable by
    `PUT /api/v1/event-types/{code}`."""
    templates: TemplatesSettings = Field(default_factory=TemplatesSettings)
    desk: DeskSettings = Field(default_factory=DeskSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @model_validator(mode="after")
    def _check_references(self) -> Settings:
        unknown = sorted(set(self.event_types) - set(EVENT_TYPES))
        if unknown:
            raise ValueError(
                f"unknown event type(s) in event_types (VESTNIK_EVENT_TYPES): "
                f"{', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}"
            )
        names = [service.name for service in self.sms_services]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(
                f"sms_services (VESTNIK_SMS_SERVICES): each name must be unique, and "
                f"{', '.join(map(repr, twice))} is used more than once"
            )
        if self.notify.sms_service is not None and self.notify.sms_service not in names:
            raise ValueError(
                f"notify.sms_service (VESTNIK_NOTIFY__SMS_SERVICE) = "
                f"{self.notify.sms_service!r} is not a name from sms_services "
                f"({', '.join(names) or 'none configured'})"
            )
        problem = self.telegram_webhook_problem()
        if problem:
            raise ValueError(problem)
        if self.notify.mode == "live" and not self.webhook.secret:
            raise ValueError(
                "notify.mode (VESTNIK_NOTIFY__MODE) = 'live' needs webhook.secret "
                "(VESTNIK_WEBHOOK__SECRET), "
                "the HMAC secret shared with the ERP"
            )
        if not self.admin.token:
            # Without a token the admin API trusts loopback peers; that is only sound on a
            # machine nobody else reaches and that sends nothing for real.
            reason = self._exposure()
            if reason:
                raise ValueError(
                    f"{reason} needs admin.token (VESTNIK_ADMIN__TOKEN), the bearer token of "
                    "the admin API: set a random string of at least "
                    f"{MIN_SECRET_CHARS} characters (`openssl rand -hex 32`)"
                )
        return self

    def telegram_webhook_url(self) -> str:
        """Where Telegram posts updates in webhook mode: `http.public_url` + the path."""
        return (self.http.public_url or "").rstrip("/") + self.telegram.webhook_route()

    def telegram_webhook_problem(self) -> str | None:
        """What keeps the bot's webhook mode from working, if anything. The webhook setup asks
        again: settings made by `model_copy` (tests) skip the validators."""
        if self.telegram.token and self.telegram.mode == "webhook" and not self.http.public_url:
            return (
                "telegram.mode (VESTNIK_TELEGRAM__MODE) = 'webhook' needs http.public_url "
                "(VESTNIK_HTTP__PUBLIC_URL), "
                "the address Telegram posts updates to"
            )
        return None

    def _exposure(self) -> str | None:
        """Why this process may be reached or act beyond the local machine, if it may."""
        if self.notify.mode == "live":
            return "notify.mode (VESTNIK_NOTIFY__MODE) = 'live'"
        if self.http.public_url:
            return "http.public_url (VESTNIK_HTTP__PUBLIC_URL)"
        if not is_loopback_host(self.http.host):
            return f"http.host (VESTNIK_HTTP__HOST) = {self.http.host!r} (not loopback)"
        return None

    @property
    def is_sqlite(self) -> bool:
        return self.database.url.startswith("sqlite")

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> Settings:
        """Read `config_file` (or ./vestnik.toml when present) and the environment.

        Raises `ConfigError` with a one-line, fixable message on any problem.
        """
        path = config_file
        if path is None and DEFAULT_CONFIG_FILE.is_file():
            path = DEFAULT_CONFIG_FILE
        if path is not None:
            if not path.is_file():
                raise ConfigError(f"config file {path} does not exist")
            try:
                with path.open("rb") as handle:
                    tomllib.load(handle)
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        environment = dict(os.environ)
        refused = check_environment(cls, environment).errors
        if refused:
            raise ConfigError("invalid configuration: " + "; ".join(refused))
        token = _config_file.set(path)
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc, cls, path, environment)) from exc
        except SettingsError as exc:
            # pydantic-settings' own message spans lines and names only the section.
            message = describe_json_variable(cls, environment)
            raise ConfigError(message or str(exc).splitlines()[0]) from exc
        finally:
            _config_file.reset(token)


def environment_warnings() -> list[str]:
    """One line per `VESTNIK_` variable no setting reads, with the name likely meant."""
    return check_environment(Settings, dict(os.environ)).warnings
