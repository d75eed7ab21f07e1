"""The base of the application shell's errors (`bot/`: settings, server, CLI).

Each of them is a problem the operator can fix, reported as one line: a wrong setting
(`bot.settings.ConfigError`), a command that cannot do its work (`bot.cli.errors.CliError`),
a server that cannot start (`bot.cli.serve.ServeError`).
"""

from __future__ import annotations


class BotError(Exception):
    """A problem of the application shell to report as one line."""
