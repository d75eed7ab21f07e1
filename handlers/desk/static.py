"""The desk's static files (`handlers/desk/static/`: htmx, its licence, the stylesheet and
the live-journal script), served from memory at `/desk/static/<name>?v=<hash>`.

The hash of the content in the URL lets the files be cached for a year: a new release
changes the URL, never what a cached URL means.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib.resources import files

from aiohttp import web

PATH = "/desk/static/{name}"
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".LICENSE": "text/plain",
}
_LONG_CACHE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str
    version: str


@functools.cache
def catalogue() -> dict[str, StaticFile]:
    folder = files("handlers.desk") / "static"
    found: dict[str, StaticFile] = {}
    for entry in folder.iterdir():
        suffix = next((s for s in _TYPES if entry.name.endswith(s)), None)
        if suffix is None or not entry.is_file():
            continue
        body = entry.read_bytes()
        version = hashlib.sha256(body).hexdigest()[:12]
        found[entry.name] = StaticFile(body, _TYPES[suffix], version)
    return found


def static_url(name: str) -> str:
    """The URL of a static file, with its content hash (KeyError for an unknown name)."""
    return f"/desk/static/{name}?v={catalogue()[name].version}"


async def serve(request: web.Request) -> web.StreamResponse:
    item = catalogue().get(request.match_info["name"])
    if item is None:
        raise web.HTTPNotFound()
    etag = f'"{item.version}"'
    headers = {"Cache-Control": _LONG_CACHE, "ETag": etag, "X-Content-Type-Options": "nosniff"}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=item.body, content_type=item.content_type, charset="utf-8", headers=headers
    )
