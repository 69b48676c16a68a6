"""axe-core in a Playwright page: the WCAG 2.0, 2.1 and 2.2 A and AA rules.

axe-core comes from the npm registry, pinned in tests/axe/package-lock.json and
installed by ``make test`` (``npm ci --prefix tests/axe``); it is test tooling
only, never served by the portal.

It is put into the page through the DevTools protocol (Playwright's
``evaluate``), which the page's Content-Security-Policy does not govern, so
the portal's strict ``script-src 'self'`` stays as it is sent.

A page opened with JavaScript off (the no-JS view) needs two adjustments,
both made only there:

* nothing the browser calls back itself runs in a page whose scripts are
  off (timers, ``queueMicrotask``, observers, events); only V8's own promise
  reactions do. axe waits on ``setTimeout`` between rules, so the page's
  ``setTimeout`` is replaced by one that runs the callback in a promise
  reaction; and axe's preloading of the style sheets (which waits on load
  events) is turned off: the one rule that reads them, css-orientation-lock,
  sees the same sheets with JavaScript on;
* axe treats every ``<noscript>`` as hidden, as it is in a browser with
  scripts on. With scripts off the browser draws its content like any other,
  so the content is lifted out of the element, in place and in order, before
  axe looks; only ``<style>``, ``<link>`` and ``<meta>`` stay where they are.
  This changes the page's DOM: take screenshots before calling
  :func:`violations`.

Whether scripts are off is read from the page itself: the HTML parser keeps
``<noscript>`` content as elements only when scripting is disabled.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

AXE_JS = Path(__file__).resolve().parents[1] / "axe" / "node_modules" / "axe-core" / "axe.min.js"
#: WCAG 2.0, 2.1 and 2.2, levels A and AA (2.2 added no level-A rule to axe)
TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")
#: how many offending elements each violation names
SHOWN = 5

_RUN = """async ([tags, shown]) => {
  const probe = document.createElement("div");
  probe.innerHTML = "<noscript><i></i></noscript>";
  const scriptsOff = probe.querySelector("i") !== null;
  if (scriptsOff) {
    window.setTimeout = (callback, _delay, ...args) => {
      Promise.resolve().then(() => callback(...args));
      return 0;
    };
    const kept = new Set(["STYLE", "LINK", "META"]);
    for (const box of document.querySelectorAll("noscript")) {
      for (const child of [...box.childNodes]) {
        if (!(child.nodeType === Node.ELEMENT_NODE && kept.has(child.tagName))) box.before(child);
      }
    }
  }
  const result = await axe.run(document, {
    runOnly: { type: "tag", values: tags },
    preload: !scriptsOff,
    resultTypes: ["violations"],
  });
  return result.violations.map((rule) => ({
    id: rule.id,
    impact: rule.impact,
    help: rule.help,
    count: rule.nodes.length,
    targets: rule.nodes.slice(0, shown).map((node) => node.target.flat().join(" ")),
  }));
}"""


@cache
def _source() -> str:
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS} is missing: `make test` installs it (npm ci --prefix tests/axe)")
    return AXE_JS.read_text(encoding="utf-8")


def violations(page: Any) -> list[dict[str, Any]]:
    """axe's WCAG 2.x A/AA violations on ``page`` as it is now.

    Each is ``{"id", "impact", "help", "count", "targets"}``, ``targets``
    being the CSS selectors of the first few offending elements.
    """
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(_source())
    found: list[dict[str, Any]] = page.evaluate(_RUN, [list(TAGS), SHOWN])
    return found


def describe(found: list[dict[str, Any]]) -> str:
    """One line per violation, for an assertion's message."""
    return "\n".join(
        f"  {v['id']} ({v['impact']}): {v['help']}; {v['count']} element(s): "
        + ", ".join(v["targets"])
        for v in found
    )
