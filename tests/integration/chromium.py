"""Launching Debian's Chromium for tests: the required flags and a fresh profile."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@contextmanager
def chromium(profile: Path, *, javascript: bool = True) -> Iterator[Any]:
    """A browser context on a fresh profile directory, closed afterwards."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: make test installs it")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=FLAGS,
            headless=True,
            java_script_enabled=javascript,
        )
        try:
            yield context
        finally:
            context.close()


@contextmanager
def launched() -> Iterator[Any]:
    """Debian's Chromium, launched once (a module's fixture); contexts are the caller's."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: make test installs it")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
