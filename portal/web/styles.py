"""The portal's stylesheets, written into each page instead of linked.

On a satellite link each request costs a round trip of about 800 ms before
its first byte, and a linked stylesheet blocks the first paint: inlined, the
form paints one round trip sooner (``bench/satellite.py``). The text is the
published file's, byte for byte, so ``portal verify-assets`` can still check
it against the release manifest (the SHA-256 of a page's ``<style>`` block
must be that of a listed stylesheet), and the Content-Security-Policy allows
exactly these blocks by their hashes (``'sha256-…'``), never
``'unsafe-inline'``.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from pathlib import Path

from markupsafe import Markup

STATIC = Path(__file__).resolve().parent / "static"
#: every stylesheet a page may carry inline (``report.html`` puts nojs.css in <noscript>)
INLINE = ("css/portal.css", "css/nojs.css")


class StyleError(RuntimeError):
    """A stylesheet could end the element that carries it; it is never inlined."""


@cache
def style_text(name: str) -> str:
    """The stylesheet ``name`` (one of :data:`INLINE`), checked to be safe inside <style>."""
    if name not in INLINE:
        raise KeyError(name)
    text = (STATIC / name).read_text(encoding="utf-8")
    if "</" in text or "<!--" in text:  # could close <style> or <noscript>, or open a comment
        raise StyleError(f"{name} cannot be written inside a <style> element")
    return text


def inline_style(name: str) -> Markup:
    """For templates: the stylesheet's text, as it is (it was checked by :func:`style_text`)."""
    return Markup(style_text(name))  # noqa: S704 - our own file, checked above


def csp_hashes() -> tuple[str, ...]:
    """The CSP sources that allow exactly the inlined stylesheets."""
    return tuple(
        "'sha256-"
        + base64.b64encode(hashlib.sha256(style_text(n).encode()).digest()).decode()
        + "'"
        for n in INLINE
    )
