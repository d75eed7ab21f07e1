"""The configuration reference (docs/CONFIGURATION.md), generated from the settings model.

    python -m bot.config_reference            # (re)write docs/CONFIGURATION.md
    python -m bot.config_reference --check    # exit 1 when the file is not what it would be

Every field of every section is listed with its TOML key, its environment variable, its
type, its default and its description. The description is the field's `description`, else
its attribute docstring (the string literal under the field, read from the class source),
else a note kept in `FALLBACK_DESCRIPTIONS` below for fields that have neither yet.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import itertools
import json
import sys
import textwrap
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from bot.settings import Settings
from dispatch.catalogue import EVENT_TYPES
from dispatch.config import EventTypeOverride, EventTypeSettings

ENV_PREFIX = "VESTNIK_"
ENV_DELIMITER = "__"
DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "CONFIGURATION.md"

# Models whose fields mirror another model's and share its docstrings.
_DOC_SOURCES: dict[type[BaseModel], type[BaseModel]] = {EventTypeOverride: EventTypeSettings}

SECTION_DESCRIPTIONS: dict[str, str] = {
    "database": "Where the journal, the queue and the directory live.",
    "http": "The HTTP server of `vestnik serve`.",
    "webhook": "The ERP webhook `POST /api/v1/events` (signed Stripe-style).",
    "admin": "The admin API (`/api/v1/...`, bearer token).",
    "telegram": "The Telegram bot.",
    "smtp": "E-mail for alerts (low balance, balance unreadable).",
    "delivery": "Live delivery: workers, retries, rate limits (README, Delivery).",
    "event_types": (
        'Per event type (`[event_types."client_order.ready"]` …): the seed\'s «Шаблоны» flags '
        "and templates; a key left out keeps the type's own default. Also editable by "
        "`PUT /api/v1/event-types/{code}`."
    ),
    "log": "Logging (see README, Operations).",
}
"""Section descriptions where the section's model has no docstring."""

FALLBACK_DESCRIPTIONS: dict[str, str] = {
    "database.url": (
        "SQLAlchemy URL: `sqlite+aiosqlite:///./vestnik.db` or "
        "`postgresql+asyncpg://user:password@host:5432/db`."
    ),
    "database.pool_size": "PostgreSQL connections per process (plus as many overflow).",
    "database.echo": "Log every SQL statement (debugging only).",
    "http.host": "Listen address of `vestnik serve` (`0.0.0.0` in a container).",
    "http.port": "Listen port of `vestnik serve`.",
    "webhook.secret": (
        "HMAC-SHA256 secret shared with the ERP (`X-Vestnik-Signature`), at least 16 "
        "characters; required in `live` mode. Without it unsigned events are accepted from "
        "direct loopback callers only (none relayed by a proxy)."
    ),
    "webhook.tolerance_seconds": "Signatures older or newer than this are refused (replays).",
    "webhook.max_body_bytes": "Larger event bodies are refused with 413.",
    "admin.token": (
        "Bearer token of the admin API, at least 16 characters; required in `live` mode, with "
        "`http.public_url` or a non-loopback `http.host`. Without it the admin API answers "
        "direct loopback callers only (none carrying Forwarded, X-Forwarded-*, X-Real-IP or "
        "Via)."
    ),
    "telegram.token": (
        "The bot's token from @BotFather; without it there is no bot and the reserve SMS route "
        "applies."
    ),
    "telegram.api_base": "The Bot API server (Telegram's, a local Bot API server, a test fake).",
    "telegram.mode": (
        "`polling` (getUpdates; one replica only) or `webhook` (needs `http.public_url`; every "
        "replica serves it)."
    ),
    "telegram.webhook_secret": (
        "`X-Telegram-Bot-Api-Secret-Token` of webhook calls (16-256 of A-Z a-z 0-9 _ -); "
        "default: derived from the token."
    ),
    "telegram.webhook_path": "Path of the webhook route, appended to `http.public_url`.",
    "notify.admin_emails": "Who gets the alert e-mails (low balance, balance unreadable).",
    "sms_services.name": (
        "The service's name: `notify.sms_service` refers to it, receipts arrive at "
        "`/api/v1/providers/<name>/status`."
    ),
    "sms_services.kind": "The provider's API (README, SMS services).",
    "sms_services.login": "SMSC login.",
    "sms_services.password": "SMSC password; Twilio auth token.",
    "sms_services.sender": (
        "Sender name or number (Twilio: the From number or a Messaging Service SID `MG…`)."
    ),
    "sms_services.rate_per_second": "At most this many SMS per second, per process.",
    "sms_services.timeout_seconds": "Timeout of one request to the provider.",
    "smtp.host": "SMTP server for alert e-mails; unset: no e-mail (alerts go to Telegram).",
    "smtp.port": "SMTP port (25, 587 with STARTTLS, 465 with implicit TLS).",
    "smtp.from": "Sender address of alert e-mails.",
    "smtp.username": "SMTP login; unset: no AUTH.",
    "smtp.password": "SMTP password (with `username`).",
    "smtp.starttls": "Upgrade the connection with STARTTLS (usually port 587).",
    "smtp.tls": "Implicit TLS from the first byte (usually port 465); wins over `starttls`.",
    "smtp.timeout_seconds": "Timeout of one SMTP conversation.",
    "scheduler.enabled": "Run the periodic jobs in this process (all replicas may: one claims "
    "each slot).",
    "delivery.max_attempts": "Tries per notification before it is `failed`.",
    "delivery.max_age_seconds": "A notification still undelivered this long after queueing "
    "is `failed`.",
    "delivery.telegram_per_second": (
        "Telegram messages per second, per process (Telegram allows 30 per bot: divide by "
        "the number of replicas)."
    ),
    "delivery.telegram_per_chat_per_second": "Telegram messages per second to one chat, per "
    "process.",
    "delivery.retry_cap_seconds": "The longest wait between two tries.",
    "delivery.lease_seconds": (
        "How long a worker holds a claimed notification; when it expires (the worker died) "
        "another worker takes it."
    ),
    "delivery.poll_seconds": "How often idle workers look for due notifications (fallback to "
    "wake-ups).",
    "event_types.template_manager": "A template file under templates/ for the manager; None "
    "uses the event type's own.",
    "log.level": "`DEBUG`, `INFO`, `WARNING` or `ERROR`.",
    "log.format": "`text` (readable lines) or `json` (one JSON object per line).",
}
"""Descriptions of fields that have no docstring yet (a docstring, once added, wins)."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One leaf setting."""

    section: str
    """The top-level key (`database`, `sms_services`, …)."""
    key: str
    """Dotted path without array/table markers: `database.url`, `sms_services.name`."""
    toml_key: str
    """As written in the reference: `database.url`, `sms_services[].name`,
    `event_types."<code>".send_to_client`."""
    env: str | None
    """`VESTNIK_DATABASE__URL`; None when the setting is TOML only."""
    type: str
    default: str
    description: str


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    heading: str
    description: str
    settings: tuple[Setting, ...]


# --- reading the model -------------------------------------------------------------------


@cache
def attribute_docstrings(model: type[BaseModel]) -> dict[str, str]:
    """field name → the string literal right under its annotation, for `model` and its
    bases (read from the source with `ast`; empty when the source is unavailable)."""
    docs: dict[str, str] = {}
    for klass in reversed(model.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, BaseModel)) or klass is BaseModel:
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        tree = ast.parse(source)
        class_def = next((node for node in tree.body if isinstance(node, ast.ClassDef)), None)
        if class_def is None:
            continue
        body = class_def.body
        for node, following in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(following.value.value)
    return docs


def _one_line(text: str) -> str:
    return " ".join(text.split())


def field_description(model: type[BaseModel], name: str, field: FieldInfo, key: str) -> str:
    if field.description:
        return _one_line(field.description)
    for source in (model, _DOC_SOURCES.get(model)):
        if source is not None and name in attribute_docstrings(source):
            return _one_line(attribute_docstrings(source)[name])
    return FALLBACK_DESCRIPTIONS.get(key, "")


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) < len(get_args(annotation)):
            return (args[0] if len(args) == 1 else Union[tuple(args)]), True  # noqa: UP007
    return annotation, False


_SCALAR_NAMES: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    Decimal: "decimal",
}


def type_name(annotation: Any) -> str:
    """`str | None` → `string, optional`; `Literal["a", "b"]` → `"a" / "b"`."""
    inner, optional = _strip_optional(annotation)
    origin = get_origin(inner)
    if origin is Literal:
        text = " / ".join(json.dumps(arg, ensure_ascii=False) for arg in get_args(inner))
    elif origin in (list, tuple, set, frozenset):
        (item, *_) = get_args(inner) or (Any,)
        text = f"list of {type_name(item)}s"
    elif origin is dict:
        text = "table"
    elif inner in _SCALAR_NAMES:
        text = _SCALAR_NAMES[inner]
    elif isinstance(inner, type) and issubclass(inner, BaseModel):
        text = "table"
    else:
        text = str(inner).replace("typing.", "")
    return f"{text}, optional" if optional else text


def constraints(field: FieldInfo) -> str:
    """`≥ 1, ≤ 200`, `> 0`, `1-64 characters` from the field's metadata."""
    parts: list[str] = []
    min_len = max_len = None
    for item in field.metadata:
        if isinstance(item, annotated_types.Ge):
            parts.append(f"≥ {item.ge}")
        elif isinstance(item, annotated_types.Gt):
            parts.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Le):
            parts.append(f"≤ {item.le}")
        elif isinstance(item, annotated_types.Lt):
            parts.append(f"< {item.lt}")
        elif isinstance(item, annotated_types.MinLen):
            min_len = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            max_len = item.max_length
    if min_len is not None or max_len is not None:
        parts.append(f"{min_len or 0}-{max_len if max_len is not None else '…'} characters")
    return ", ".join(parts)


def toml_value(value: Any) -> str:
    """A default as it would be written in the TOML file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Decimal | int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "none"
    return f"`{toml_value(value)}`"


def _field_key(name: str, field: FieldInfo) -> str:
    """The key in the file and the environment: the alias when there is one (`from`)."""
    return field.alias or name


def _model_of(annotation: Any) -> type[BaseModel] | None:
    inner, _ = _strip_optional(annotation)
    return inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None


def _leaves(
    model: type[BaseModel],
    *,
    section: str,
    key_prefix: str,
    toml_prefix: str,
    env_prefix: str | None,
) -> Iterator[Setting]:
    for name, field in model.model_fields.items():
        key_name = _field_key(name, field)
        key = f"{key_prefix}.{key_name}"
        toml_key = f"{toml_prefix}.{key_name}"
        env = f"{env_prefix}{ENV_DELIMITER}{key_name.upper()}" if env_prefix else None
        nested = _model_of(field.annotation)
        if nested is not None:
            yield from _leaves(
                nested, section=section, key_prefix=key, toml_prefix=toml_key, env_prefix=env
            )
            continue
        type_text = type_name(field.annotation)
        limits = constraints(field)
        if limits:
            type_text = f"{type_text} ({limits})"
        default = default_text(field)
        if model in _DOC_SOURCES:
            default = "the type's own" if default == "none" else default
        yield Setting(
            section=section,
            key=key,
            toml_key=toml_key,
            env=env,
            type=type_text,
            default=default,
            description=field_description(model, name, field, key),
        )


def _model_doc(model: type[BaseModel]) -> str:
    doc = model.__dict__.get("__doc__")
    return _one_line(inspect.cleandoc(doc)) if doc else ""


def sections(settings_model: type[BaseModel] = Settings) -> list[Section]:
    """Every section of the settings model with its leaf settings, in model order."""
    result: list[Section] = []
    for name, field in settings_model.model_fields.items():
        key = _field_key(name, field)
        env_root = f"{ENV_PREFIX}{key.upper()}"
        annotation = field.annotation
        origin = get_origin(annotation)
        model = _model_of(annotation)
        if model is not None:
            heading = f"`[{key}]`"
            leaves = _leaves(
                model, section=key, key_prefix=key, toml_prefix=key, env_prefix=env_root
            )
        elif origin in (list, tuple) and _model_of(get_args(annotation)[0]) is not None:
            model = _model_of(get_args(annotation)[0])
            assert model is not None
            heading = f"`[[{key}]]` (TOML only)"
            leaves = _leaves(
                model, section=key, key_prefix=key, toml_prefix=f"{key}[]", env_prefix=None
            )
        elif origin is dict and _model_of(get_args(annotation)[1]) is not None:
            model = _model_of(get_args(annotation)[1])
            assert model is not None
            heading = f'`[{key}."<code>"]` (TOML only)'
            leaves = _leaves(
                model,
                section=key,
                key_prefix=key,
                toml_prefix=f'{key}."<code>"',
                env_prefix=None,
            )
        else:  # a top-level scalar: VESTNIK_<KEY>
            model = None
            heading = f"`{key}`"
            leaves = iter(
                [
                    Setting(
                        section=key,
                        key=key,
                        toml_key=key,
                        env=env_root,
                        type=type_name(annotation),
                        default=default_text(field),
                        description=field_description(settings_model, name, field, key),
                    )
                ]
            )
        description = SECTION_DESCRIPTIONS.get(key) or (_model_doc(model) if model else "")
        result.append(Section(key, heading, description, tuple(leaves)))
    return result


def all_settings(settings_model: type[BaseModel] = Settings) -> list[Setting]:
    return [leaf for section in sections(settings_model) for leaf in section.settings]


def env_variable_names(settings_model: type[BaseModel] = Settings) -> frozenset[str]:
    """Every `VESTNIK_*` variable the settings model reads (TOML-only settings excluded)."""
    return frozenset(leaf.env for leaf in all_settings(settings_model) if leaf.env)


# --- rendering ---------------------------------------------------------------------------

_INTRO = """\
# Configuration reference

<!-- Generated from the settings model by `python -m bot.config_reference`: do not edit by
hand. `python -m bot.config_reference --check` (and a test) fail when this file is stale. -->

Vestnik reads a TOML file (`--config PATH`, default `./vestnik.toml` when present) and the
environment: a variable `VESTNIK_<SECTION>__<KEY>` overrides the key `<key>` of section
`[<section>]` (names are case-insensitive). Lists take JSON in a variable, e.g.
`VESTNIK_NOTIFY__ADMIN_EMAILS='["admin@example.com"]'`. `[[sms_services]]` and
`[event_types."<code>"]` are set in the TOML file only. A wrong value stops every command
with one line naming the key and its variable; `vestnik check-config` also tries the
database, SMTP, Telegram and the SMS services.

Settings changed through the API (`PUT /api/v1/settings`, `PUT /api/v1/event-types/{code}`)
are stored in the database and override the file's `[notify]` and `[event_types]` for every
replica.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(settings_model: type[BaseModel] = Settings) -> str:
    """The whole of docs/CONFIGURATION.md."""
    lines = [_INTRO]
    for section in sections(settings_model):
        lines.append(f"## {section.heading}\n")
        if section.description:
            lines.append(section.description + "\n")
        if section.name == "event_types":
            codes = ", ".join(f"`{code}`" for code in EVENT_TYPES)
            lines.append(f"Event type codes: {codes}.\n")
        lines.append("| key | variable | type | default | description |")
        lines.append("| --- | --- | --- | --- | --- |")
        for leaf in section.settings:
            env = f"`{leaf.env}`" if leaf.env else "TOML only"
            lines.append(
                "| "
                + " | ".join(
                    _cell(cell)
                    for cell in (
                        f"`{leaf.toml_key}`",
                        env,
                        leaf.type,
                        leaf.default,
                        leaf.description,
                    )
                )
                + " |"
            )
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.config_reference",
        description="Write docs/CONFIGURATION.md from the settings model.",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when the file differs; write nothing"
    )
    parser.add_argument("--output", type=Path, default=DOC_PATH, help=f"default {DOC_PATH}")
    args = parser.parse_args(argv)
    text = render()
    current = args.output.read_text(encoding="utf-8") if args.output.is_file() else None
    if args.check:
        if current != text:
            print(
                f"{args.output} is stale: run `python -m bot.config_reference`",
                file=sys.stderr,
            )
            return 1
        print(f"{args.output} is up to date")
        return 0
    if current != text:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(f"{args.output} is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
