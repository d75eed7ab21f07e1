"""What Telegram accepts as `parse_mode=HTML`: a few tags, properly nested, and four named
entities. A Telegram text is checked when it is saved: Telegram refuses a whole message
whose markup it cannot parse, and every message of that type would then fall back to SMS.
"""

from __future__ import annotations

from html.parser import HTMLParser

__all__ = ["markup_problem"]

# https://core.telegram.org/bots/api#html-style
_TAGS = frozenset(
    {
        "a",
        "b",
        "blockquote",
        "code",
        "del",
        "em",
        "i",
        "ins",
        "pre",
        "s",
        "span",
        "strike",
        "strong",
        "tg-emoji",
        "tg-spoiler",
        "u",
    }
)
_ENTITIES = frozenset({"lt", "gt", "amp", "quot"})
_ALLOWED = "b, i, u, s, a, code, pre, blockquote, tg-spoiler"


class _Problem(Exception):
    pass


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TAGS:
            raise _Problem(f"<{tag}> is not a tag Telegram accepts ({_ALLOWED})")
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise _Problem(f"<{tag}/> is not a tag Telegram accepts; a line break is a new line")

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            expected = f"</{self.open[-1]}> was expected" if self.open else "nothing is open"
            raise _Problem(f"</{tag}> closes nothing ({expected})")
        self.open.pop()

    def handle_entityref(self, name: str) -> None:
        if name not in _ENTITIES:
            raise _Problem(f"&{name}; is not an entity Telegram knows (&lt; &gt; &amp; &quot;)")


def markup_problem(text: str) -> str | None:
    """Why Telegram would refuse `text` as HTML (naming the line of the text), or None."""
    checker = _Checker()
    try:
        checker.feed(text)
        checker.close()
    except _Problem as exc:
        return f"line {checker.getpos()[0]} of the rendered text: {exc}"
    if checker.open:
        return f"<{checker.open[-1]}> is never closed"
    return None
