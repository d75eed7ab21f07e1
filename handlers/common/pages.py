"""The Jinja2 environment of the server-rendered browser pages (the desk, the sandbox).

HTML from data the ERP and users typed in: autoescaped, and a missing value is an error
rather than an empty gap in the page. Each page family has its folder under `templates/`.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined


def page_environment(folder: str) -> Environment:
    """An environment over `templates/<folder>`; the caller adds its filters and globals."""
    return Environment(
        loader=FileSystemLoader(str(Path(str(files("templates"))) / folder), encoding="utf-8"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
