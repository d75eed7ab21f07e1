"""What a command raises to end with one line on stderr and an exit status (CONTRACT §1)."""

from __future__ import annotations

from bot.errors import BotError

EXIT_RUNTIME = 1
"""A runtime problem: database unreachable, server not answering, a check failed."""
EXIT_USAGE = 2
"""Wrong arguments or configuration."""


class CliError(BotError):
    """A problem to report as one line, with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_RUNTIME) -> None:
        super().__init__(message)
        self.exit_code = exit_code
