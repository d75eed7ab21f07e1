"""What a new user reads and copies first: the example files, the docs' references, the
README's Quick tour and the compose file's tunables, checked against the code."""

from __future__ import annotations

import argparse
import itertools
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from bot.cli.main import build_parser
from bot.settings import Settings
from dispatch.catalogue import EVENT_TYPES, sample_event
from dispatch.intake.schemas import EventIn
from handlers.http.openapi.table import ROUTES
from storage.statuses import ALL_STATUSES
from tests.unit.test_compose import (
    COMPOSE,
    env_example,
    environment_of,
    interpolate,
    load_compose,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
EVENT_FILES = sorted((EXAMPLES / "events").glob("*.json"))
README = ROOT / "README.md"
INTERFACE = ROOT / "docs" / "INTERFACE.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]


def load_json(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), path
    return document


# --- examples/ -------------------------------------------------------------------------


def test_one_example_event_per_catalogue_type_named_after_its_type() -> None:
    types = {path.stem: load_json(path)["type"] for path in EVENT_FILES}
    assert [stem for stem, type_ in types.items() if stem != type_] == []
    assert sorted(types) == sorted(EVENT_TYPES)
    assert len(EVENT_FILES) == 16


def test_example_events_match_the_schema_with_unique_ids_and_lines_where_the_type_has_them() -> (
    None
):
    ids = []
    for path in EVENT_FILES:
        body = load_json(path)
        event = EventIn.model_validate(body)
        ids.append(event.event_id)
        assert event.client.phone and event.client.phone.startswith("+7"), path.name
        document = body["document"]
        assert document["number"], path.name
        typical_has_lines = bool(sample_event(event.type)["document"]["lines"])
        assert bool(document["lines"]) == typical_has_lines, path.name
    assert len(set(ids)) == len(ids), "two example events share an event_id"


def test_the_tour_event_is_a_client_order_identical_to_its_twin_under_events() -> None:
    tour = (EXAMPLES / "event.json").read_bytes()
    body = json.loads(tour)
    assert body["type"].startswith("client_order.")
    assert body["client"]["phone"], "the tour's first message goes by SMS: it needs a phone"
    assert (EXAMPLES / "events" / f"{body['type']}.json").read_bytes() == tour


def test_example_configuration_loads_as_a_live_deployment_with_placeholder_secrets() -> None:
    settings = Settings.load(EXAMPLES / "vestnik.toml")

    assert settings.notify.mode == "live"
    assert settings.database.url.startswith("postgresql+asyncpg://")
    assert settings.telegram.mode == "webhook" and settings.http.public_url
    assert [service.kind for service in settings.sms_services] == ["smsc"]
    assert settings.notify.sms_service == settings.sms_services[0].name
    assert settings.smtp.host and settings.smtp.starttls
    assert settings.event_types
    smsc = settings.sms_services[0]
    placeholders = {
        "database.url": settings.database.url,
        "webhook.secret": settings.webhook.secret,
        "admin.token": settings.admin.token,
        "telegram.token": settings.telegram.token,
        "telegram.webhook_secret": settings.telegram.webhook_secret,
        "smtp.password": settings.smtp.password,
        "sms_services.login": smsc.login,
        "sms_services.password": smsc.password,
        "sms_services.token": smsc.token,
    }
    # check-config refuses values containing `change-me`: a copy can never go live as is.
    assert [key for key, value in placeholders.items() if "change-me" not in (value or "")] == []


# --- docker-compose.yml and .env.example ------------------------------------------------

# VESTNIK_* values the compose file sets without a `${VAR:-default}`, and why.
FIXED_IN_COMPOSE = {
    "VESTNIK_DATABASE__URL": "the compose file's own postgres service",
    "VESTNIK_HTTP__HOST": "inside the container the app listens on every interface",
    "VESTNIK_HTTP__PORT": "the proxy's upstream and the image's HEALTHCHECK use 8080",
    "VESTNIK_HTTP__PUBLIC_URL": "derived from PUBLIC_HOST, which the proxy uses too",
    "VESTNIK_TELEGRAM__MODE": "two replicas need webhook mode (polling allows one)",
}
_TUNABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+):-(?P<default>[^}]*)\}")


def compose_vestnik_values() -> dict[str, str]:
    values: dict[str, str] = {}
    for service in load_compose()["services"].values():
        for name, value in environment_of(service).items():
            if name.startswith("VESTNIK_"):
                assert values.setdefault(name, value) == value, f"{name} differs by service"
    return values


def test_every_tunable_vestnik_value_in_compose_comes_from_env_with_a_default() -> None:
    values = compose_vestnik_values()
    assert sorted(set(FIXED_IN_COMPOSE) - set(values)) == [], "FIXED_IN_COMPOSE is stale"
    listed = env_example()
    for name, value in values.items():
        if name in FIXED_IN_COMPOSE:
            continue
        match = _TUNABLE.fullmatch(value)
        assert match and match.group("name") == name, f"{name}: {value!r} is not ${{{name}:-…}}"
        assert name in listed, f".env.example does not list {name}"
        assert listed[name][0] == match.group("default"), f"{name}: defaults differ"


def test_a_tunable_set_in_env_reaches_the_replicas() -> None:
    """Compose interpolates `environment:` values from .env, so the README's advice to set
    the Telegram rate in .env takes effect (a literal there would win over env_file)."""
    service = load_compose()["services"]["vestnik"]
    dotenv = {"POSTGRES_PASSWORD": "pw", "PUBLIC_HOST": "vestnik.example.com"}
    default = {k: interpolate(v, dotenv) for k, v in environment_of(service).items()}
    assert default["VESTNIK_DELIVERY__TELEGRAM_PER_SECOND"] == "15"
    tuned_env = {**dotenv, "VESTNIK_DELIVERY__TELEGRAM_PER_SECOND": "7.5"}
    tuned = {k: interpolate(v, tuned_env) for k, v in environment_of(service).items()}
    assert tuned["VESTNIK_DELIVERY__TELEGRAM_PER_SECOND"] == "7.5"


def test_compose_header_states_the_minimum_compose_version() -> None:
    lines = COMPOSE.read_text(encoding="utf-8").splitlines()
    text = "\n".join(itertools.takewhile(lambda line: line.startswith("#"), lines))
    assert "Docker Compose 2.23.1" in text
    assert "configs: content:" in text
    assert "content: |" in COMPOSE.read_text(encoding="utf-8"), "the reason is still there"


# --- the docs refer to the repository only ----------------------------------------------

_LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")
_PLAIN_PATH = re.compile(r"(?<![\w/.:<>{}-])(?:docs|examples|bench)/[\w.<>{}*,/-]*[\w/*>}]")
_TICKED = re.compile(r"`([^`\s]+)`")
_TOP_FOLDERS = {"docs", "examples", "bench", "bot", "handlers", "dispatch", "storage"}
_TOP_FOLDERS |= {"templates", "tests"}


def repo_paths(text: str) -> set[str]:
    """`docs/X.md`, `examples/…`, `bench/…` anywhere, and backticked paths under a top
    folder; placeholders (`<code>`, `{a,b}`, `*`) stand for any file that fits."""
    found = set(_PLAIN_PATH.findall(text))
    found |= {t for t in _TICKED.findall(text) if "/" in t and t.split("/")[0] in _TOP_FOLDERS}
    return found


def exists_in_repo(pattern: str) -> bool:
    alternatives = [pattern]
    brace = re.search(r"\{([^{}]*,[^{}]*)\}", pattern)
    if brace:
        alternatives = [
            pattern[: brace.start()] + part + pattern[brace.end() :]
            for part in brace.group(1).split(",")
        ]
    for alternative in alternatives:
        glob = re.sub(r"<[^>]+>", "*", alternative).rstrip("/")
        if not any(ROOT.glob(glob)):
            return False
    return True


def test_repo_path_finder_sees_paths_and_placeholders() -> None:
    text = "see docs/INTERFACE.md. `templates/events/<code>.{client,manager}.txt.j2`, `x/y`"
    assert repo_paths(text) == {
        "docs/INTERFACE.md",
        "templates/events/<code>.{client,manager}.txt.j2",
    }
    assert exists_in_repo("templates/events/<code>.{client,manager}.txt.j2")
    assert not exists_in_repo("templates/events/<code>.{client,nobody}.txt.j2")
    assert not exists_in_repo("docs/NOWHERE.md")


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_path_and_relative_link_in_the_docs_exists(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    missing = sorted(path for path in repo_paths(text) if not exists_in_repo(path))
    for match in _LINK.finditer(text):
        target = match.group("target").split("#", 1)[0]
        external = re.match(r"[a-z]+:", target)
        if target and not external and not (doc.parent / target).exists():
            missing.append(target)
    assert missing == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_the_docs_point_at_no_document_outside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    outside = ("../shared", "shared folder", "CONTRACT.md", "CONTRACT §")
    assert [phrase for phrase in outside if phrase.lower() in text.lower()] == []


# --- docs/INTERFACE.md matches the code ---------------------------------------------------


def interface_text() -> str:
    return INTERFACE.read_text(encoding="utf-8")


def test_interface_lists_every_event_code_with_its_title() -> None:
    rows = {
        match.group(1): match.group(2).strip()
        for match in re.finditer(r"^\| `([a-z_.]+)` \| ([^|]+) \|", interface_text(), re.M)
    }
    assert {code: rows.get(code) for code in EVENT_TYPES} == {
        code: event_type.title for code, event_type in EVENT_TYPES.items()
    }


def test_interface_explains_every_status() -> None:
    explained = re.findall(r"^\| `([a-z_]+)` \| [^|]+\|$", interface_text(), re.M)
    assert sorted(set(explained) & set(ALL_STATUSES)) == sorted(ALL_STATUSES)


def test_interface_names_every_route_of_the_openapi_table() -> None:
    text = interface_text()
    missing = [
        f"{route.method.upper()} {route.path}"
        for route in ROUTES
        if not re.search(re.escape(route.path) + r"(?![\w/{}.-])", text)
    ]
    assert missing == [], "document these routes in docs/INTERFACE.md"


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_interface_describes_every_cli_command() -> None:
    text = interface_text()
    assert [name for name in subcommands() if f"`vestnik {name}" not in text] == []


# --- the README's Quick tour ------------------------------------------------------------


def quick_tour() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Quick tour\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def sh_blocks(markdown: str) -> list[str]:
    """The command lines of the ```sh blocks, continuation lines joined, comments dropped."""
    blocks = re.findall(r"^ *```sh\n(.*?)^ *```", markdown, re.M | re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def tour_commands() -> list[list[str]]:
    """Each command line as words, without the `NAME=value` assignments before it."""
    commands = [shlex.split(line, comments=True) for line in sh_blocks(quick_tour())]
    assignment = re.compile(r"[A-Z_][A-Z0-9_]*=")
    return [list(itertools.dropwhile(assignment.match, words)) for words in commands]


def test_the_quick_tour_runs_the_sandbox_in_one_terminal_and_posts_the_examples() -> None:
    commands = tour_commands()
    assert ["vestnik", "serve", "--sandbox"] in [[Path(c[0]).name, *c[1:]] for c in commands]
    posted = [c[-1] for c in commands if c[1:2] == ["send-event"]]
    assert posted[0] == "examples/event.json"
    assert "http://127.0.0.1:8080/sandbox/" in quick_tour()
    assert "holds the terminal" in quick_tour()


def test_the_quick_tour_uses_existing_subcommands_and_files() -> None:
    known = set(subcommands())
    problems = []
    for command in tour_commands():
        program, *args = command
        if Path(program).name == "vestnik":
            while args and args[0] == "--config":
                args = args[2:]
            if not args or args[0] not in known:
                problems.append(f"unknown subcommand: {shlex.join(command)}")
            files = [
                a
                for a in args[1:]
                if not a.startswith("-") and "://" not in a and ("/" in a or "." in a)
            ]
        elif program == "cp":
            files = args[:-1]  # the destination is made by the command
        else:
            problems.append(f"not a vestnik command: {shlex.join(command)}")
            continue
        problems += [f"no such file: {name}" for name in files if not (ROOT / name).exists()]
    assert problems == []
