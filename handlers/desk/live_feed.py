"""The doorbell of the desk's open journal pages.

A page's event stream re-reads the journal every `desk.live_seconds` anyway (a change made
by another process or replica is seen there); a ring makes it look at once after what this
process did: an ERP event stored, a desk action.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class LiveFeed:
    def __init__(self) -> None:
        self._bells: set[asyncio.Event] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        """The server is stopping: open streams end."""
        return self._closed

    def ring(self, *_: object) -> None:
        """Wake every open stream (any arguments, so it can observe the ingestor)."""
        for bell in self._bells:
            bell.set()

    def close(self) -> None:
        self._closed = True
        self.ring()

    @contextlib.contextmanager
    def listen(self) -> Iterator[asyncio.Event]:
        """A bell for one stream, set on every ring (the stream clears it)."""
        bell = asyncio.Event()
        self._bells.add(bell)
        try:
            yield bell
        finally:
            self._bells.discard(bell)
