"""Configuration mistakes told in the user's terms: the TOML key or the variable they wrote,
what is wrong with it, and the nearest real name when there is one.

pydantic says "Extra inputs are not permitted" or raises a multi-line `SettingsError`; the
functions here turn those into one line each. They walk the settings model given to them
(`bot.settings.Settings`) rather than import it, so the settings module can use them. The
environment is handed in as a mapping: only `bot.settings` reads it.
"""

from __future__ import annotations

import difflib
import json
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

ENV_PREFIX = "VESTNIK_"
ENV_DELIMITER = "__"

Location = tuple[str | int, ...]


def _unwrap(annotation: Any) -> Any:
    """`X` out of `X | None` and `Annotated[X, ...]`."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _keys(model: type[BaseModel]) -> dict[str, Any]:
    """The names a TOML table or a variable uses for `model`'s fields (an alias when the
    field has one: `smtp.from`), each with its type."""
    return {info.alias or name: info.annotation for name, info in model.model_fields.items()}


def _child(annotation: Any, part: str | int) -> Any:
    """The type found at `part` inside `annotation`, or None."""
    annotation = _unwrap(annotation)
    origin = get_origin(annotation)
    if _is_model(annotation) and isinstance(part, str):
        return _keys(annotation).get(part)
    if origin in (list, tuple, set, frozenset) and isinstance(part, int):
        return get_args(annotation)[0]
    if origin is dict and isinstance(part, str):
        return get_args(annotation)[1]
    return None


def _is_complex(annotation: Any) -> bool:
    """What pydantic-settings reads from one variable as JSON."""
    annotation = _unwrap(annotation)
    return _is_model(annotation) or get_origin(annotation) in (list, tuple, set, frozenset, dict)


def dotted(location: Location) -> str:
    """`http.port`, `sms_services[0].kind`, `event_types."client_order.ready".enabled`."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = f'"{part}"' if "." in part else part
            text += f".{name}" if text else name
    return text


def variable(model: type[BaseModel], location: Location) -> tuple[str, bool]:
    """The variable that sets `location`, and whether it takes JSON: past a list or a table
    of tables, the whole container is one JSON variable (`VESTNIK_SMS_SERVICES`)."""
    names: list[str] = []
    annotation: Any = model
    for part in location:
        if not isinstance(part, str) or not _is_model(_unwrap(annotation)):
            break
        names.append(part)
        annotation = _child(annotation, part)
    name = ENV_PREFIX + ENV_DELIMITER.join(names).upper()
    return name, len(names) < len(location) or _is_complex(annotation)


def _suggest(word: str, candidates: Sequence[str]) -> str | None:
    matches = difflib.get_close_matches(word, candidates, n=1)
    return matches[0] if matches else None


def _suggest_variable(name: str, known: Sequence[str]) -> str:
    """`, did you mean VESTNIK_X?` or nothing; the common prefix would make any name close."""
    suggestion = _suggest(name[len(ENV_PREFIX) :], [other[len(ENV_PREFIX) :] for other in known])
    return f", did you mean {ENV_PREFIX}{suggestion}?" if suggestion else ""


def _variables(model: type[BaseModel]) -> list[str]:
    """Every variable the model reads: one per section and one per key of a section."""
    names = []
    for key, annotation in _keys(model).items():
        names.append(ENV_PREFIX + key.upper())
        if _is_model(_unwrap(annotation)):
            names.extend(
                ENV_PREFIX + f"{key}{ENV_DELIMITER}{sub}".upper()
                for sub in _keys(_unwrap(annotation))
            )
    return names


def _unknown_key(
    model: type[BaseModel], location: Location, path: Path | None, environment: Mapping[str, str]
) -> str:
    parent, key = location[:-1], str(location[-1])
    container: Any = model
    for part in parent:
        container = _child(container, part)
    container = _unwrap(container)
    candidates = list(_keys(container)) if _is_model(container) else []
    suggestion = _suggest(key, candidates)
    name, as_json = variable(model, location)
    if name in environment and not as_json:
        text = f"unknown variable {name}"
        if suggestion is not None:
            text += f", did you mean {variable(model, (*parent, suggestion))[0]}?"
        return text
    where = f" in {name}" if name in environment else f" in {path}" if path else ""
    text = f"unknown key `{dotted(location)}`{where}"
    if suggestion is not None:
        text += f", did you mean `{dotted((*parent, suggestion))}`?"
    return text


def describe_validation_error(
    exc: ValidationError,
    model: type[BaseModel],
    path: Path | None,
    environment: Mapping[str, str],
) -> str:
    """One line for all of `exc`'s problems: each names the key and its variable."""
    upper = {name.upper(): value for name, value in environment.items()}
    problems = []
    for error in exc.errors():
        location: Location = tuple(error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if not location:
            # A cross-section rule: its message names the settings and their variables.
            problems.append(message)
        elif error["type"] == "extra_forbidden":
            problems.append(_unknown_key(model, location, path, upper))
        else:
            name, as_json = variable(model, location)
            where = f" in {path}" if path and name not in upper else ""
            shown = f"{name}, as JSON" if as_json else name
            problems.append(f"{dotted(location)}{where} ({shown}): {message}")
    return "invalid configuration: " + "; ".join(problems)


def _json_example(annotation: Any, value: str) -> str:
    """What a JSON value of `annotation` looks like, from what the user wrote when it fits."""
    annotation = _unwrap(annotation)
    origin = get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        item = _unwrap(get_args(annotation)[0])
        if _is_model(item):
            return f"a JSON list such as [{_object_example(item)}]"
        items = [part.strip() for part in value.split(",") if part.strip()] or ["..."]
        return "a JSON list such as " + json.dumps(items, ensure_ascii=False)
    if origin is dict:
        inner = _unwrap(get_args(annotation)[1])
        body = _object_example(inner) if _is_model(inner) else '"..."'
        return f'a JSON object such as {{"KEY": {body}}}'
    return f"a JSON object such as {_object_example(annotation)}"


def _object_example(model: type[BaseModel]) -> str:
    return "{" + ", ".join(f'"{key}": "..."' for key in list(_keys(model))[:2]) + "}"


def describe_json_variable(model: type[BaseModel], environment: Mapping[str, str]) -> str | None:
    """The line for a variable that must hold JSON (a list, a table) and does not, or None."""
    for name, value in sorted(environment.items()):
        location = _location_of(model, name)
        if location is None:
            continue
        annotation: Any = model
        for part in location:
            annotation = _child(annotation, part)
        if not _is_complex(annotation):
            continue
        try:
            json.loads(value)
        except ValueError:
            expected = _json_example(annotation, value)
            return f"invalid configuration: {name.upper()}: expected {expected}"
    return None


def _location_of(model: type[BaseModel], name: str) -> Location | None:
    """The settings key a `VESTNIK_` variable sets, or None when it sets none."""
    if not name.upper().startswith(ENV_PREFIX):
        return None
    parts = tuple(name[len(ENV_PREFIX) :].lower().split(ENV_DELIMITER))
    annotation: Any = model
    for part in parts:
        annotation = _child(annotation, part) if _is_model(_unwrap(annotation)) else None
        if annotation is None:
            return None
    return parts


@dataclass(slots=True)
class EnvironmentReport:
    """What the `VESTNIK_` variables hold that no setting reads."""

    errors: list[str] = field(default_factory=list)
    """Variables in the settings' form (`SECTION__KEY`) naming no section: refused."""
    warnings: list[str] = field(default_factory=list)
    """Other variables no setting reads (a single underscore for the double one): ignored."""


def check_environment(model: type[BaseModel], environment: Mapping[str, str]) -> EnvironmentReport:
    """Find the `VESTNIK_` variables that pydantic-settings would silently ignore.

    A wrong key of a known section is pydantic's own error (see `describe_validation_error`).
    """
    report = EnvironmentReport()
    known = _variables(model)
    sections = _keys(model)
    for name in sorted(name.upper() for name in environment):
        if not name.startswith(ENV_PREFIX) or name in known:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        if ENV_DELIMITER in rest:
            if rest.split(ENV_DELIMITER)[0] not in sections:
                report.errors.append(f"unknown variable {name}{_suggest_variable(name, known)}")
            continue
        meant = next(_single_underscore_readings(model, rest), None)
        if meant is not None:
            report.warnings.append(f"ignoring {name}: did you mean {meant}?")
            continue
        hint = _suggest_variable(name, known)
        report.warnings.append(f"ignoring {name}: no setting reads it{hint}")
    return report


def _single_underscore_readings(model: type[BaseModel], rest: str) -> Iterator[str]:
    """`VESTNIK_NOTIFY__MODE` for `notify_mode`: each split at one underscore that names a
    section and one of its keys."""
    for index, char in enumerate(rest):
        if char != "_":
            continue
        location = _location_of(
            model, ENV_PREFIX + rest[:index] + ENV_DELIMITER + rest[index + 1 :]
        )
        if location is not None:
            yield variable(model, location)[0]
