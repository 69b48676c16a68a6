"""Every shipped language's text is drawn in its own script, not as boxes ("tofu").

Debian's Chromium draws only what its fonts cover: without fonts-noto-core
and fonts-noto-cjk (scripts/install-system-deps.sh) Burmese, Hindi, Arabic
and Chinese come out as empty boxes, and nothing in the page's markup says
so. So the check is made on what the browser draws.

How: a character that no font has is drawn as the primary font's .notdef
glyph (the box), whichever character it was; so every such character draws
exactly the same pixels. In the page itself, with the page's own font
(``font`` of its body), each distinct character of the page's text and of a
sample in the language's script is drawn alone on a canvas and compared,
pixel for pixel, with the drawing of U+10FFFD (a private-use code point that
no font covers). Identical means tofu. Whitespace and invisible format
characters (Cf, e.g. ZWJ and bidi marks) draw nothing and are left out. An
unassigned code point must come out as tofu, which shows that the check can
fail.

The page's text includes the language picker, whose names are each in
their own script, so every page checks every script once more.

A full-page screenshot per language is saved (its path printed, ``-s``) for a
person to look at.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DemoPortal
from tests.integration.chromium import launched
from tests.integration.portal_server import fresh_demo, serve_portal
from tests.integration.test_accessibility_browser import shipped_codes

#: a few words in each language's script (its own name, mostly)
SAMPLES = {
    "my": "မြန်မာ",
    "hi": "हिन्दी",
    "ar": "العربية",
    "zh-Hans": "中文",
    "ru": "Русский",
    "uk": "Українська",
    "vi": "Tiếng Việt",
    "tl": "Tagalog",
    "id": "Bahasa Indonesia",
    "fr": "Français",
    "es": "Español",
    "en": "English",
}
#: unassigned in Unicode: no font has it, so it must come out as tofu
UNASSIGNED = "\u0378"

_TOFU = """([chars, font]) => {
  const canvas = document.createElement("canvas");
  canvas.width = 160;
  canvas.height = 96;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const draw = (text) => {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.font = font;
    ctx.textBaseline = "middle";
    ctx.fillStyle = "#000";
    ctx.fillText(text, 40, 48);
    const rgba = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    return rgba.filter((_, i) => i % 4 === 3);
  };
  const box = draw("\\u{10FFFD}");
  const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
  return {
    boxInk: box.reduce((sum, v) => sum + (v > 0 ? 1 : 0), 0),
    tofu: chars.filter((c) => same(draw(c), box)),
  };
}"""


@pytest.fixture(scope="module")
def portal(demo_template: DemoPortal, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One portal under gunicorn for the module (the pages are only read)."""
    workdir = tmp_path_factory.mktemp("scripts")
    demo = fresh_demo(demo_template, workdir)
    with serve_portal(demo, workdir) as server:
        yield str(server["url"])


@pytest.fixture(scope="module")
def browser_page() -> Iterator[Any]:
    """One page in one Chromium for the module, at a desktop's size."""
    with launched() as browser:
        yield browser.new_page(viewport={"width": 1280, "height": 900})


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("script-screenshots")


def visible_characters(text: str) -> list[str]:
    """The distinct characters of ``text`` that draw something, in order of first use."""
    return list(
        dict.fromkeys(
            c for c in text if not c.isspace() and unicodedata.category(c) not in {"Cf", "Cc"}
        )
    )


def tofu(page: Any, text: str) -> list[str]:
    """The characters of ``text`` that the page's font stack draws as the missing-glyph box."""
    font = page.evaluate("getComputedStyle(document.body).font")
    found = page.evaluate(_TOFU, [visible_characters(text), font])
    assert found["boxInk"] > 20, f"the missing-glyph box draws nothing in {font!r}: no reference"
    return list(found["tofu"])


@pytest.mark.parametrize("code", shipped_codes())
def test_the_report_page_draws_its_script(
    portal: str, browser_page: Any, shots: Path, code: str
) -> None:
    page = browser_page
    page.goto(f"{portal}/?lang={code}")
    shot = shots / f"report-{code}.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")

    sample = SAMPLES.get(code, "")
    assert tofu(page, UNASSIGNED) == [UNASSIGNED], "the check cannot tell tofu from text"
    missing = tofu(page, sample + page.inner_text("body"))
    named = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, '?')}" for c in missing)
    assert not missing, f"drawn as boxes on the {code!r} report page: {named}"
