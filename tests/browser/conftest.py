"""A real browser for the desk's scenarios: headless Chromium from the distribution's
package (`apt-get install chromium`), driven by Playwright for Python. No browser is ever
downloaded; without Chromium these tests fail, saying how to install it.

Screenshots go to tests/artifacts/desk/ (ignored by git); each test prints their paths.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "desk"
TIMEOUT_MS = 20_000
"""Generous: a busy CI machine renders slowly, and a live update waits for a poll."""


def chromium_path() -> str:
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    found = shutil.which("chromium")
    if found:
        return found
    pytest.fail(
        "Chromium is not installed: the desk's browser tests need the distribution's package "
        "(`apt-get install -y chromium`, which .ci/run does when it is missing); they never "
        "download a browser.",
        pytrace=False,
    )


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Headless Chromium for one test."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail(
            "Playwright for Python is missing: install the test extra "
            "(`.venv/bin/pip install -e '.[test]'`).",
            pytrace=False,
        )
    executable = chromium_path()
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=executable)
        try:
            yield chromium
        finally:
            await chromium.close()


async def screenshot(page: Any, name: str) -> Path:
    """Save the whole page as tests/artifacts/desk/<name>.png and print where."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path
