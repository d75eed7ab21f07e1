"""The container files, checked without a Docker engine: docker-compose.yml parses and passes
the compose-spec JSON schema (vendored in tests/data), every VESTNIK_* variable it or
.env.example sets is a real setting, and the Dockerfile and the wheel's package data hold
what the image needs."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from aiohttp import web
from pydantic import BaseModel

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, $NAME, and $$.
_INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_]\w*)"
)
_ENV_LINE = re.compile(r"^\s*#?\s*(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


# --- helpers ---------------------------------------------------------------------------


def settings_env_names(model: type[BaseModel] = Settings, prefix: str = "VESTNIK") -> set[str]:
    """VESTNIK_<SECTION>__<KEY> (deeper: __<KEY>__<KEY>) for every field the environment
    source can set; list- and dict-valued sections ([[sms_services]], [event_types]) are
    TOML only."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        key = (field.alias or name).upper()
        env = f"{prefix}_{key}" if model is Settings else f"{prefix}__{key}"
        annotation: Any = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= settings_env_names(annotation, env)
        elif model is Settings and not isinstance(annotation, type):
            continue  # list[...] / dict[...] of models at the top level: TOML only
        else:
            names.add(env)
    return names


def load_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def env_example() -> dict[str, tuple[str, bool]]:
    """name → (value, commented out) of every `NAME=value` line of .env.example."""
    found: dict[str, tuple[str, bool]] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = _ENV_LINE.match(line)
        if match:
            value = match.group("value").strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            found[match.group("name")] = (value, line.lstrip().startswith("#"))
    return found


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation, as far as this project's files use it."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        value = env.get(name)
        op, arg = match.group("op"), match.group("arg")
        if op in (":-", "-") and (value is None or (op == ":-" and value == "")):
            return arg
        if op in (":?", "?") and (value is None or (op == ":?" and value == "")):
            raise AssertionError(f"compose would stop: {name}: {arg}")
        return value or ""

    return _INTERPOLATION.sub(substitute, text)


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {str(key): "" if value is None else str(value) for key, value in environment.items()}


def compose_vestnik_variables(document: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for service in document["services"].values():
        names |= {name for name in environment_of(service) if name.startswith("VESTNIK_")}
    return names


# --- the compose file ------------------------------------------------------------------


def test_compose_file_passes_the_compose_spec_schema() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = [
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in validator_class(schema).iter_errors(load_compose())
    ]
    assert errors == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "vestnik", "replicas"), 2),  # belongs under deploy
        (("services", "migrate", "depends_on", "postgres", "condition"), "service_done"),
        (("volumes", "pgdata"), "not-a-mapping"),
    ],
)
def test_the_schema_check_catches_a_broken_compose_file(path: tuple[str, ...], value: Any) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    document = copy.deepcopy(load_compose())
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert list(validator.iter_errors(document)), f"{'.'.join(path)} = {value!r} passed"


def test_settings_env_names_walk_every_section() -> None:
    names = settings_env_names()
    assert {"VESTNIK_NOTIFY__MODE", "VESTNIK_DATABASE__URL", "VESTNIK_SMTP__FROM"} <= names
    assert {"VESTNIK_LOG__FORMAT", "VESTNIK_DELIVERY__TELEGRAM_PER_SECOND"} <= names
    assert not {"VESTNIK_NOTIFY", "VESTNIK_SMS_SERVICES", "VESTNIK_EVENT_TYPES"} & names
    assert "VESTNIK_NOTIFY__MODEE" not in names


def test_every_vestnik_variable_in_compose_and_env_example_is_a_setting() -> None:
    valid = settings_env_names()
    used = compose_vestnik_variables(load_compose())
    used |= {name for name in env_example() if name.startswith("VESTNIK_")}
    assert {"VESTNIK_TELEGRAM__MODE", "VESTNIK_DATABASE__URL", "VESTNIK_WEBHOOK__SECRET"} <= used
    assert sorted(used - valid) == []


def test_compose_and_env_example_values_load_as_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """`cp .env.example .env` (with every commented line switched on) gives replicas whose
    settings load, in webhook mode, on PostgreSQL."""
    dotenv = {name: value for name, (value, _) in env_example().items()}
    raw = COMPOSE.read_text(encoding="utf-8")
    for match in _INTERPOLATION.finditer(raw):
        name = match.group("name") or match.group("bare")
        if (name and not match.group("op")) or match.group("op") in (":?", "?"):
            assert name in dotenv, f"docker-compose.yml needs {name}: add it to .env.example"
    document = yaml.safe_load(interpolate(raw, dotenv))
    service = document["services"]["vestnik"]
    environment = {**dotenv, **environment_of(service)}
    for name, value in environment.items():
        if name.startswith("VESTNIK_"):
            monkeypatch.setenv(name, value)
    settings = Settings.load()
    assert settings.telegram.mode == "webhook"
    assert settings.http.public_url == f"https://{dotenv['PUBLIC_HOST']}"
    assert settings.http.host == "0.0.0.0"
    assert settings.database.url.startswith("postgresql+asyncpg://vestnik:")
    assert settings.database.url.endswith("@postgres:5432/vestnik")
    assert settings.log.format == "json"
    replicas = service["deploy"]["replicas"]
    assert settings.delivery.telegram_per_second * replicas <= 30


def test_compose_runs_postgres_a_one_shot_migration_and_two_webhook_replicas() -> None:
    document = load_compose()
    services = document["services"]
    assert {"postgres", "migrate", "vestnik"} <= set(services)

    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in document["volumes"]

    migrate = services["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"

    vestnik = services["vestnik"]
    assert vestnik["command"] == ["serve", "--no-migrate"]
    assert vestnik["deploy"]["replicas"] == 2
    assert vestnik["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert environment_of(vestnik)["VESTNIK_TELEGRAM__MODE"] == "webhook"
    assert environment_of(vestnik)["VESTNIK_HTTP__PUBLIC_URL"].startswith("https://")
    assert "ports" not in vestnik, "replicas cannot share a host port; the proxy publishes"
    # The same image for both, built once from this Dockerfile.
    assert vestnik["image"] == migrate["image"]
    assert vestnik["build"] == migrate["build"] == "."

    proxy = services["proxy"]
    caddyfile = document["configs"][proxy["configs"][0]["source"]]["content"]
    assert "dynamic a vestnik 8080" in caddyfile
    assert "respond @internal 404" in caddyfile  # /metrics stays inside


# --- the image -------------------------------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_is_slim_non_root_with_a_healthcheck() -> None:
    instructions = _dockerfile_instructions()
    stages = [index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert all("-slim" in instructions[index][1] for index in stages)
    final = instructions[stages[-1] :]
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any(keyword == "HEALTHCHECK" for keyword, _ in final)
    assert ("ENTRYPOINT", '["vestnik"]') in final
    assert not any(keyword == "RUN" and "apt-get" in rest for keyword, rest in final)


def _build_check_snippet() -> str:
    for keyword, rest in _dockerfile_instructions():
        if keyword == "RUN" and "templates" in rest and "python -c" in rest:
            return rest.split('python -c "', 1)[1].rsplit('"', 1)[0]
    raise AssertionError("the Dockerfile does not check the installed templates")


def test_dockerfile_build_check_passes_on_the_installed_package() -> None:
    snippet = _build_check_snippet()
    done = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, cwd="/", check=False
    )
    assert done.returncode == 0, done.stderr
    broken = snippet.replace("glob('events/*.j2')", "glob('events/*.nothing')")
    done = subprocess.run(
        [sys.executable, "-c", broken], capture_output=True, text=True, cwd="/", check=False
    )
    assert done.returncode != 0
    assert "templates/events/*.j2 missing" in done.stderr


async def test_dockerfile_healthcheck_asks_readyz() -> None:
    healthcheck = next(rest for key, rest in _dockerfile_instructions() if key == "HEALTHCHECK")
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    status = {"code": 200}

    async def readyz(_request: web.Request) -> web.Response:
        return web.json_response({}, status=status["code"])

    app = web.Application()
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    env = {**os.environ, "VESTNIK_HTTP__PORT": str(port)}
    executable = [sys.executable if command[0] == "python" else command[0], *command[1:]]

    async def run() -> int:
        process = await asyncio.create_subprocess_exec(
            *executable,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return await process.wait()

    try:
        assert await run() == 0
        status["code"] = 503
        assert await run() != 0
    finally:
        await runner.cleanup()


def test_wheel_package_data_covers_templates_and_migrations() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = pyproject["tool"]["setuptools"]
    package_data: dict[str, list[str]] = setuptools["package-data"]

    def shipped(package: str) -> set[Path]:
        base = ROOT / package
        return {path for pattern in package_data[package] for path in base.glob(pattern)}

    templates = {
        path for path in (ROOT / "templates").rglob("*") if path.is_file() and path.suffix == ".j2"
    }
    assert any(path.parent.name == "events" for path in templates)
    assert templates <= shipped("templates")
    migrations = {
        path
        for path in (ROOT / "storage" / "migrations").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert migrations and migrations <= shipped("storage")
    # The Dockerfile copies every package the wheel is built from.
    copied = {rest.split()[0] for key, rest in _dockerfile_instructions() if key == "COPY"}
    for pattern in setuptools["packages"]["find"]["include"]:
        assert pattern.rstrip("*") in copied, f"the Dockerfile does not COPY {pattern}"
