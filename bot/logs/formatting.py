r"""The two output formats, readable text lines (default) and JSON lines.

One record is one line, whatever a caller puts in a value: the text format escapes control
characters (C0 and C1 controls, DEL, U+2028/2029, bidi overrides) in the line it writes: a
newline becomes the two characters `\n`, ESC becomes `\x1b`, so a receipt id holding
`\n2026-… CRITICAL …` cannot start a line of its own. The exception and stack text it
appends keep their real newlines (they are the formatter's own), but every one of their
lines is indented, so a line that starts at column 0 always starts a record. The JSON format
escapes the same characters as `\uXXXX`.

Both apply the redaction to the finished line once more, for anything a formatter adds
itself.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from bot.logs.context import current_log_context
from bot.logs.redaction import Redactor, extra_fields

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s%(log_context)s: %(message)s"

# Everything a terminal or a line-based reader (a log shipper, `str.splitlines`, `less`) may
# take for a line break or a control sequence: C0 controls, DEL, C1 controls (NEL U+0085
# among them), the Unicode line and paragraph separators, and the bidi embeddings and
# isolates that make a line display as something else than it holds.
_CONTROL_CODES = (
    *range(0x00, 0x20),
    0x7F,
    *range(0x80, 0xA0),
    0x2028,
    0x2029,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
)
_NAMED_ESCAPES = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}


def _escape_of(code: int) -> str:
    if code in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[code]
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


_LINE_ESCAPES = {code: _escape_of(code) for code in _CONTROL_CODES}
# The exception and stack text keep their newlines and indentation tabs (the formatter's
# own); any other control in them (from an exception message) is escaped.
_BLOCK_ESCAPES = {code: escape for code, escape in _LINE_ESCAPES.items() if code not in (9, 10)}
# json.dumps already writes C0 controls as \uXXXX; these it leaves raw with
# ensure_ascii=False. Outside strings a JSON line is ASCII, so this rewrite is lossless.
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in _CONTROL_CODES if code >= 0x7F}
BLOCK_INDENT = "  "
"""Prefix of every line of an exception or stack text in the text format."""


def escape_controls(text: str) -> str:
    """`text` on one line: control characters and line separators as escapes (`\\n`,
    `\\x1b`, `\\u2028`)."""
    return text.translate(_LINE_ESCAPES)


def _indented_block(text: str) -> str:
    """The exception or stack text: its own newlines kept, every line indented (so no line
    of it can pass for the start of a record), other controls escaped."""
    lines = text.rstrip("\n").translate(_BLOCK_ESCAPES).split("\n")
    return "\n".join(BLOCK_INDENT + line for line in lines)


class TextFormatter(logging.Formatter):
    """`2026-11-27 10:15:00,123 INFO    vestnik.erp [request_id=…]: message`.

    The line is one line whatever the values hold (`escape_controls`); an exception or stack
    follows on indented lines.
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__(TEXT_FORMAT)
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "log_context"):
            record.log_context = ""
        # logging.Formatter.format, with the escaping between its steps: the head line is
        # escaped whole, the appended blocks keep their newlines.
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        # Redacted before escaping: the phone and secret patterns see the text as written.
        parts = [escape_controls(self.redactor(self.formatMessage(record)))]
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            parts.append(_indented_block(self.redactor(record.exc_text)))
        if record.stack_info:
            parts.append(_indented_block(self.redactor(self.formatStack(record.stack_info))))
        return "\n".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context ids, the
    `extra=` fields, and `exc` with the traceback."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = getattr(record, "context", None)
        entry.update(context if context is not None else current_log_context())
        for key, value in extra_fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        line = json.dumps(entry, ensure_ascii=False, default=str)
        return self.redactor(line).translate(_JSON_ESCAPES)
