"""The configuration reference (docs/CONFIGURATION.md), generated from the settings model.

    python -m bot.config_reference            # (re)write docs/CONFIGURATION.md
    python -m bot.config_reference --check    # exit 1 when the file is not what it would be

Every field of every section is listed with its TOML key, its environment variable, its
type, its default and its description. All of it is read from the models: the description
is the field's `description`, which pydantic fills from the docstring under the field
(`use_attribute_docstrings`); a section's text is the docstring under its field in
`Settings`, else its model's class docstring. A setting without a docstring fails the test.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from bot.settings import Settings
from dispatch.catalogue import EVENT_TYPES
from dispatch.config import EventTypeOverride, EventTypeSettings

# The names pydantic-settings reads: `VESTNIK_` + section + `__` + key.
ENV_PREFIX = str(Settings.model_config.get("env_prefix") or "")
ENV_DELIMITER = str(Settings.model_config.get("env_nested_delimiter") or "__")
DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "CONFIGURATION.md"

# Models whose fields mirror another model's: a partial override is documented by the
# fields it overrides, and what it leaves out keeps "the type's own" value.
_MIRRORS: dict[type[BaseModel], type[BaseModel]] = {EventTypeOverride: EventTypeSettings}


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


def _one_line(text: str) -> str:
    return " ".join(text.split())


def field_description(model: type[BaseModel], name: str, field: FieldInfo) -> str:
    """The field's description (its docstring), else that of the field it mirrors."""
    if field.description:
        return _one_line(field.description)
    mirrored = _MIRRORS.get(model)
    if mirrored is not None and name in mirrored.model_fields:
        return _one_line(mirrored.model_fields[name].description or "")
    return ""


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
        if model in _MIRRORS:
            default = "the type's own" if default == "none" else default
        yield Setting(
            section=section,
            key=key,
            toml_key=toml_key,
            env=env,
            type=type_text,
            default=default,
            description=field_description(model, name, field),
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
                        description=field_description(settings_model, name, field),
                    )
                ]
            )
        description = field_description(settings_model, name, field) or (
            _model_doc(model) if model else ""
        )
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
