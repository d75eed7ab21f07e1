"""`vestnik`: the console script (CONTRACT §1).

Every failure the user can fix ends as one line on stderr and a non-zero exit status:
2 for wrong arguments or configuration, 1 for a runtime problem (database unreachable,
server not answering).

Each command imports what it needs when it runs, so `vestnik --help` and a quick command
do not pay for loading aiogram, SQLAlchemy and the whole app.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NoReturn

from bot.cli.errors import EXIT_USAGE, CliError
from bot.settings import ConfigError, Settings, environment_warnings
from dispatch.ops.job_names import JobName

logger = logging.getLogger("vestnik")

# Plain strings: argparse shows the choices with repr() in its errors.
JOB_NAMES = tuple(name.value for name in JobName)
CONFIG_HELP = "TOML config file (default ./vestnik.toml when present)"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n(see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from storage.statuses import ALL_STATUSES

    parser = _Parser(
        prog="vestnik",
        description=(
            "Vestnik: notifications from the ERP to clients and managers by Telegram and SMS."
        ),
        epilog=(
            "Configuration: a TOML file (--config, default ./vestnik.toml when present) "
            "overridden by VESTNIK_<SECTION>__<KEY> environment variables. --config may "
            "come before or after the command; given in both places, the one after the "
            "command wins. `vestnik COMMAND --help` tells more about each command."
        ),
    )
    parser.add_argument("--version", action="version", version=f"vestnik {_version()}")
    parser.add_argument("--config", type=Path, metavar="PATH", help=CONFIG_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        help="run the HTTP server, workers, bot and scheduler in one process",
        description="Run everything in one process: the HTTP server (ERP webhook, admin API, "
        "Telegram webhook when enabled), the delivery workers, the Telegram bot when a token "
        "is set, and the scheduler. The database schema is upgraded first (unless "
        "--no-migrate). Ctrl-C or SIGTERM stops it gracefully.",
    )
    serve.add_argument("--host", help="listen address (overrides http.host)")
    serve.add_argument("--port", type=int, help="listen port (overrides http.port)")
    serve.add_argument(
        "--no-migrate", action="store_true", help="do not upgrade the database schema at start"
    )
    serve.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="server processes sharing the port (overrides http.processes, default 1; "
        "more than 1 needs PostgreSQL)",
    )
    serve.add_argument(
        "--sandbox",
        action="store_true",
        help="live mode against built-in loopback fakes of Telegram and an SMS gateway "
        "(nothing leaves this machine); see /sandbox/",
    )

    commands.add_parser(
        "migrate",
        help="bring the database schema up to date",
        description="Bring the database schema (database.url) up to date, as `serve` does at "
        "start, and print the revision before and after.",
    )

    send = commands.add_parser(
        "send-event",
        help="sign an event JSON file and post it to a running server",
        description="Sign an event JSON file with webhook.secret, as the ERP would, post it to "
        "a running `vestnik serve` (POST /api/v1/events), and print the answer.",
    )
    send.add_argument("file", type=Path, metavar="FILE.json", help="the event body")
    send.add_argument(
        "--url", help="the server's base URL (default http://<http.host>:<http.port>)"
    )

    journal = commands.add_parser(
        "journal",
        help="print the notification journal as a table",
        description="Print the latest notifications from the database as a table: the "
        "recipient, channel, status and text (phone numbers masked).",
    )
    journal.add_argument("--status", choices=ALL_STATUSES, help="only this status")
    journal.add_argument(
        "--limit", type=_positive_int, default=20, help="how many rows (default 20)"
    )

    commands.add_parser(
        "check-config",
        help="validate the configuration and try the database, SMTP, Telegram and SMS services",
        description="Validate the configuration, then try what it names: the database and its "
        "schema, SMTP, the Telegram token and each SMS service. One line per check; exit 1 "
        "when one fails.",
    )

    run_job = commands.add_parser(
        "run-job",
        help="run a scheduled job now in a running server",
        description="Run a scheduled job now, outside its schedule, in a running server "
        "(POST /api/v1/jobs/NAME/run with admin.token), and print what it reported.",
    )
    run_job.add_argument(
        "name",
        metavar="NAME",
        choices=JOB_NAMES,
        help="one of: " + ", ".join(JOB_NAMES),
    )
    run_job.add_argument(
        "--url", help="the server's base URL (default http://<http.host>:<http.port>)"
    )

    balance = commands.add_parser(
        "balance",
        help="print the SMS balance of the provider",
        description="Ask the SMS provider for the account's balance and print it, with the "
        "low-balance threshold (notify.low_balance_threshold).",
    )
    balance.add_argument(
        "--service", help="a name from [[sms_services]] (default: the one in use)"
    )

    test_sms = commands.add_parser(
        "test-sms",
        help="send the test SMS (it costs one SMS)",
        description="Send the test SMS to PHONE through the SMS service in use (or --service) "
        "and journal it. It costs one SMS; test_sms limits how many a day.",
    )
    test_sms.add_argument("phone", metavar="PHONE", help="e.g. +79161234567")
    test_sms.add_argument(
        "--service", help="a name from [[sms_services]] (default: the one in use)"
    )
    for command in commands.choices.values():
        # Unset unless given after the command, so that it does not hide the one before it.
        command.add_argument(
            "--config", type=Path, metavar="PATH", default=argparse.SUPPRESS, help=CONFIG_HELP
        )
    return parser


def _version() -> str:
    try:
        return version("vestnik")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def _load_settings(args: argparse.Namespace) -> Settings:
    try:
        settings = Settings.load(args.config)
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    for warning in environment_warnings():
        print(f"vestnik: warning: {warning}", file=sys.stderr)
    return settings


def _configure_logging(settings: Settings) -> None:
    from bot.logs import configure_logging, secrets_from_settings

    configure_logging(
        settings.log.level, settings.log.format, secrets=secrets_from_settings(settings)
    )


def cmd_serve(args: argparse.Namespace) -> None:
    settings = _load_settings(args)
    # After the settings: a mistake in them is told before the app is imported.
    from bot.cli.database_errors import check_database_url
    from bot.cli.serve import run_server

    overrides: dict[str, Any] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if overrides:
        settings = settings.model_copy(update={"http": settings.http.model_copy(update=overrides)})
    processes = args.workers or settings.http.processes
    if processes > 1:
        from bot.cli.workers import check_workers

        check_workers(settings, processes, sandbox=args.sandbox)
    sandbox = None
    if args.sandbox:
        from bot.sandbox.wiring import Sandbox

        sandbox = Sandbox()
        try:
            settings = sandbox.settings_for(settings)
        except ConfigError as exc:
            sandbox.close()
            raise CliError(str(exc), EXIT_USAGE) from None
    check_database_url(settings.database.url)
    if processes > 1:
        from bot.cli.workers import run_workers

        _configure_logging(settings)
        run_workers(
            settings, count=processes, config_file=args.config, migrate=not args.no_migrate
        )
        return
    _configure_logging(settings)
    run_server(settings, config_file=args.config, migrate=not args.no_migrate, sandbox=sandbox)


def cmd_migrate(args: argparse.Namespace) -> None:
    from bot.cli.database_errors import check_database_url, database_error
    from storage import migrate
    from storage.database import create_database

    settings = _load_settings(args)
    check_database_url(settings.database.url)
    _configure_logging(settings)

    async def run() -> tuple[str | None, str | None]:
        db = create_database(settings.database.url)
        try:
            return await migrate.upgrade(db)
        finally:
            await db.dispose()

    try:
        before, after = asyncio.run(run())
    except Exception as exc:
        problem = database_error(settings.database.url, exc)
        if problem is not None:
            raise problem from None
        raise
    if before == after:
        print(f"database schema is up to date (revision {after})")
    else:
        print(f"database schema upgraded: {before or 'empty'} -> {after}")


def cmd_send_event(args: argparse.Namespace) -> None:
    from bot.cli.client import post_event

    settings = _load_settings(args)
    try:
        raw = args.file.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}", EXIT_USAGE) from None
    try:
        json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CliError(f"{args.file} is not valid JSON: {exc}", EXIT_USAGE) from None
    base_url = args.url or f"http://{settings.http.host}:{settings.http.port}"
    status, body = asyncio.run(post_event(base_url, raw, secret=settings.webhook.secret))
    print(f"HTTP {status}")
    print(json.dumps(body, ensure_ascii=False, indent=2))
    if status >= 400:
        raise CliError(f"the server refused the event (HTTP {status})")


def cmd_run_job(args: argparse.Namespace) -> None:
    from bot.cli.client import post_admin

    settings = _load_settings(args)
    base_url = args.url or f"http://{settings.http.host}:{settings.http.port}"
    status, body = asyncio.run(
        post_admin(base_url, f"/api/v1/jobs/{args.name}/run", token=settings.admin.token)
    )
    if status != 200:
        error = body.get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else body
        raise CliError(f"the server refused to run {args.name} (HTTP {status}): {message}")
    print(json.dumps(body.get("result"), ensure_ascii=False, indent=2))
    if body.get("error"):
        raise CliError(f"job {args.name} failed: {body['error']}")


def cmd_journal(args: argparse.Namespace) -> None:
    from bot.cli.journal_table import print_journal

    settings = _load_settings(args)
    print_journal(settings, status=args.status, limit=args.limit)


def cmd_balance(args: argparse.Namespace) -> None:
    from bot.cli.sms import print_balance

    print_balance(_load_settings(args), args.service)


def cmd_test_sms(args: argparse.Namespace) -> None:
    from bot.cli.sms import run_test_sms

    run_test_sms(_load_settings(args), args.phone, args.service)


def cmd_check_config(args: argparse.Namespace) -> None:
    settings = _load_settings(args)
    # After the settings: a mistake in them is told before the checks' libraries load.
    from bot.cli.check_config import print_checks
    from bot.logs import configure_logging, secrets_from_settings

    # The check lines are the output; only library warnings and errors go to stderr.
    configure_logging("WARNING", settings.log.format, secrets=secrets_from_settings(settings))
    if print_checks(settings, args.config) != 0:
        raise CliError("some checks failed (the FAIL lines above say why)")


COMMANDS: dict[str, Callable[[argparse.Namespace], None]] = {
    "serve": cmd_serve,
    "migrate": cmd_migrate,
    "send-event": cmd_send_event,
    "journal": cmd_journal,
    "balance": cmd_balance,
    "test-sms": cmd_test_sms,
    "check-config": cmd_check_config,
    "run-job": cmd_run_job,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except CliError as exc:
        print(f"vestnik: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
