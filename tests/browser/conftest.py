"""Headless Chromium for the browser tests: Debian's ``/usr/bin/chromium``, never a download.

Playwright for Python drives it through its async API (the sync API cannot run inside the
event loop the tests and the gateway share). Without Chromium, or without a CJK font (Debian's
``fonts-noto-cjk``: else every screenshot shows Chinese as boxes), the tests skip with the
reason (``-ra`` shows it); under ``CI=true`` they fail instead, so CI can never pass without
them. ``make test`` and ``.ci/run`` install both when missing.
``GBA_BROWSER_CHROMIUM`` points at another Chromium; ``GBA_BROWSER_ARTIFACTS`` names a folder
for the screenshots (default: each test's temporary folder).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("GBA_BROWSER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"Chromium is required in CI: {reason}", pytrace=False)
    pytest.skip(f"Chromium not available: {reason}")


@pytest.fixture
def chromium() -> str:
    """The Chromium executable, or skip (fail under CI) with the reason."""
    if not Path(CHROMIUM).is_file():
        _unavailable(f"{CHROMIUM} does not exist (apt-get install chromium)")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"{CHROMIUM} is not executable")
    if not cjk_fonts():
        _unavailable("no CJK font (apt-get install fonts-noto-cjk): Chinese would show as boxes")
    return CHROMIUM


def cjk_fonts() -> list[str]:
    """The font families fontconfig (which Chromium uses) has for Chinese."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return []
    found = subprocess.run(  # noqa: S603 - fontconfig's own lister, fixed arguments
        [fc_list, ":lang=zh", "family"], capture_output=True, text=True, check=False, timeout=30
    )
    return sorted({line.strip() for line in found.stdout.splitlines() if line.strip()})


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Any]:
    """One headless Chromium per test, closed afterwards."""
    from playwright.async_api import Error, async_playwright

    async with async_playwright() as playwright:
        try:
            launched = await playwright.chromium.launch(
                executable_path=chromium, args=CHROMIUM_ARGS, headless=True
            )
        except Error as exc:
            _unavailable(f"{chromium} does not start ({exc.message.splitlines()[0]})")
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """Where screenshots go: ``GBA_BROWSER_ARTIFACTS`` if set, else the test's tmp folder."""
    folder = Path(os.environ.get("GBA_BROWSER_ARTIFACTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
