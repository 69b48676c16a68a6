"""A benchmark page in headless Chromium: served from loopback under the portal's CSP."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Error as PlaywrightError

from tests.integration.chromium import chromium
from tests.integration.loopback import static_origin

CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; base-uri 'none'"
HERE = Path(__file__).with_name("browser")


@contextmanager
def bench_page(html: str, script: str) -> Iterator[Any]:
    """Open bench/browser/``html`` (which loads ``script``) once it says it is ready.

    The portal's modules are served at /static/js/, as on the portal.
    """
    pages = {"/": HERE / html, f"/{script}": HERE / script}
    with (
        static_origin(pages, CSP) as origin,
        tempfile.TemporaryDirectory() as profile,
        chromium(Path(profile)) as context,
    ):
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda message: problems.append(f"console: {message.text}"))
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

        def failed(response: Any) -> None:
            if not response.ok:
                problems.append(f"{response.status} for {response.url}")

        page.on("response", failed)
        page.goto(origin + "/")
        try:
            page.wait_for_selector("#ready:has-text('ready')", state="attached", timeout=20_000)
        except PlaywrightError:
            raise SystemExit(f"{html}: the benchmark page never became ready:\n"
                             + "\n".join(problems or ["(nothing reported)"])) from None  # fmt: skip
        yield page
