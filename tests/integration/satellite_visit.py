"""A reporter's visit in Chromium, timed by the page itself: shared by test_satellite and the bench.

:data:`MARKS` is injected by the browser (Playwright's init script, through
the DevTools protocol, so the page's CSP does not apply to it) before the
page's own scripts. It records, in milliseconds since the navigation began
(``performance.now()``):

* ``fcp``: the first contentful paint;
* ``form``: the first frame in which ``#report`` is visible;
* ``preparing``, ``ready``, ``unavailable``, ``failed``: when
  ``<html data-encryption>`` first took each value (the contract of the
  report page, /tmp/h/contract.md section B).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, selectinload

from portal.storage.models import Submission

CATEGORY = "piracy-or-armed-robbery"

MARKS = r"""
(() => {
  const marks = {};
  Object.defineProperty(window, '__marks', { value: marks });
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.name === 'first-contentful-paint') marks.fcp = entry.startTime;
    }
  }).observe({ type: 'paint', buffered: true });
  const look = () => {
    const state = document.documentElement && document.documentElement.dataset.encryption;
    if (state && !(state in marks)) marks[state] = performance.now();
    const form = document.getElementById('report');
    if (marks.form === undefined && form && form.checkVisibility()) marks.form = performance.now();
  };
  const everything = { subtree: true, childList: true, attributes: true };
  new MutationObserver(look).observe(document, everything);
  const frame = () => { look(); if (marks.form === undefined) requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
})();
"""


def marks(page: Any) -> dict[str, float]:
    """What :data:`MARKS` has recorded so far, in seconds since the navigation began."""
    return {name: ms / 1000 for name, ms in page.evaluate("({...window.__marks})").items()}


def wait_for_encryption(page: Any, timeout_s: float) -> str:
    """Wait until the page's encryption is settled; its state (``ready`` or why not)."""
    state = "document.documentElement.dataset.encryption"
    # a function, not an expression: the page's CSP forbids eval
    page.wait_for_function(
        f"() => ['ready', 'unavailable', 'failed'].includes({state})", timeout=timeout_s * 1000
    )
    return str(page.evaluate("document.documentElement.dataset.encryption"))


def fill_report(page: Any, narrative: str, photo: Path | None) -> None:
    """Choose the category, describe what happened, attach the photo."""
    page.select_option("select[name=category]", CATEGORY)
    page.fill("textarea[name=narrative]", narrative)
    if photo is not None:
        page.set_input_files("#f-attachments", str(photo))


def jpeg_photo(path: Path, size: int) -> Path:
    """A JPEG of about ``size`` bytes that does not compress (camera noise, in effect)."""
    side = max(16, int((size / 2.2) ** 0.5))
    for _ in range(4):  # noise costs a steady number of bytes per pixel: converge on the size
        image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
        image.save(path, "JPEG", quality=85)
        side = max(16, int(side * (size / path.stat().st_size) ** 0.5))
    return path


def stored_parts(data_dir: Path, database_url: str) -> list[list[Path]]:
    """Each stored report's blob files, report first (follow-up messages left out)."""
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            query = (
                select(Submission)
                .where(Submission.thread_id.is_(None))
                .options(selectinload(Submission.parts))
            )
            return [
                [data_dir / "blobs" / part.blob for part in submission.parts]
                for submission in session.scalars(query)
            ]
    finally:
        engine.dispose()
