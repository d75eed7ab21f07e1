"""Process settings: a TOML file overridden by `VESTNIK_<SECTION>__<KEY>` variables.

With neither, everything has a default that runs: SQLite `./vestnik.db`, HTTP on
127.0.0.1:8080, notify mode `test`, no bot.
"""

from __future__ import annotations

import re
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from dispatch.catalogue import EVENT_TYPES
from dispatch.config import (
    DeliverySettings,
    EventTypeOverride,
    NotifySettings,
    SchedulerSettings,
    SmsServiceConfig,
    SmtpSettings,
)

DEFAULT_CONFIG_FILE = Path("vestnik.toml")
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./vestnik.db"
TELEGRAM_API_BASE = "https://api.telegram.org"

# The TOML path of the `load()` call in progress; pydantic-settings builds sources per class,
# so this is how one call hands its file to `settings_customise_sources`.
_config_file: ContextVar[Path | None] = ContextVar("vestnik_config_file", default=None)


class ConfigError(Exception):
    """The configuration cannot be used; the message says what to fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(_Section):
    url: str = DEFAULT_DATABASE_URL
    pool_size: int = Field(default=10, ge=1, le=200)
    echo: bool = False


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = None
    """The address the outside world uses (Telegram webhook, provider callbacks)."""


class WebhookSettings(_Section):
    secret: str | None = None
    tolerance_seconds: int = Field(default=300, ge=1)
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)


class AdminSettings(_Section):
    token: str | None = None


class TelegramSettings(_Section):
    token: str | None = None
    api_base: str = TELEGRAM_API_BASE
    mode: Literal["polling", "webhook"] = "polling"
    webhook_secret: str | None = None
    webhook_path: str = "/telegram/webhook"


class LogSettings(_Section):
    level: str = "INFO"
    format: Literal["text", "json"] = "text"


class Settings(BaseSettings):
    """Everything `create_app()` needs."""

    model_config = SettingsConfigDict(
        env_prefix="VESTNIK_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    sms_services: list[SmsServiceConfig] = Field(default_factory=list)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    event_types: dict[str, EventTypeOverride] = Field(default_factory=dict)
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
                f"unknown event type(s) in [event_types]: {', '.join(unknown)}; "
                f"known: {', '.join(EVENT_TYPES)}"
            )
        names = [service.name for service in self.sms_services]
        if len(names) != len(set(names)):
            raise ValueError("[[sms_services]] names must be unique")
        if self.notify.sms_service is not None and self.notify.sms_service not in names:
            raise ValueError(
                f"notify.sms_service = {self.notify.sms_service!r} is not a name "
                f"from [[sms_services]] ({', '.join(names) or 'none configured'})"
            )
        if self.telegram.token and self.telegram.mode == "webhook" and not self.http.public_url:
            raise ValueError(
                "telegram.mode = 'webhook' needs http.public_url (VESTNIK_HTTP__PUBLIC_URL), "
                "the address Telegram posts updates to"
            )
        secret = self.telegram.webhook_secret
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise ValueError(
                "telegram.webhook_secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -"
            )
        if self.notify.mode == "live" and not self.webhook.secret:
            raise ValueError(
                "notify.mode = 'live' needs webhook.secret (VESTNIK_WEBHOOK__SECRET), "
                "the HMAC secret shared with the ERP"
            )
        return self

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
        token = _config_file.set(path)
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc, path)) from exc
        finally:
            _config_file.reset(token)


def describe_validation_error(exc: ValidationError, path: Path | None) -> str:
    """One readable line per problem: where it is and what is wrong."""
    where = f" in {path}" if path else ""
    problems = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "settings"
        env_name = "VESTNIK_" + "__".join(
            str(part).upper() for part in error["loc"] if isinstance(part, str)
        )
        problems.append(f"{location} (env {env_name}): {error['msg']}")
    return f"invalid configuration{where}: " + "; ".join(problems)
