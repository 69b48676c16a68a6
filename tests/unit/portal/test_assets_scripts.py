"""``portal verify-assets`` reads every ``<script>`` of a page: data blocks pass, code fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.assets import _page_findings, manifest_entries
from portal.findings import Status
from portal.security import csp_header
from portal.styles import style_text
from tests.integration.loopback import static_origin

MODULE = '<script type="module" src="/static/js/report-page.js"></script>'
DATA = '<script type="application/json" id="form-rules">{"fields": []}</script>'


def _verdicts(tmp_path: Path, body: str) -> list[tuple[bool, str]]:
    page = tmp_path / "page.html"
    page.write_text(f"<!doctype html><html><head>{body}</head><body></body></html>")
    manifest = {"static/js/report-page.js": "0" * 64}
    with static_origin({"/": page}, csp_header()) as origin:
        findings = _page_findings(origin, "/", manifest, None, None)
    return [(finding.status is Status.OK, finding.message) for finding in findings]


def test_a_json_data_block_is_not_an_inline_script(tmp_path: Path) -> None:
    verdicts = _verdicts(tmp_path, MODULE + DATA)
    assert all(ok for ok, _ in verdicts), verdicts
    assert any("JSON data block" in message for _, message in verdicts)


@pytest.mark.parametrize(
    "script",
    [
        "<script>alert(1)</script>",
        '<script type="text/javascript">alert(1)</script>',
        '<script type="module">import "/x.js"</script>',
        '<script type="application/json-x">{}</script>',
    ],
)
def test_code_beside_the_data_block_still_fails(tmp_path: Path, script: str) -> None:
    verdicts = _verdicts(tmp_path, MODULE + DATA + script)
    assert (False, "has an inline script") in verdicts, verdicts


def _style_verdicts(tmp_path: Path, css: str) -> list[tuple[bool, str]]:
    page = tmp_path / "page.html"
    page.write_text(f"<!doctype html><html><head><style>{css}</style>{MODULE}</head></html>")
    manifest = {"static/js/report-page.js": "0" * 64, **manifest_entries()}
    with static_origin({"/": page}, csp_header()) as origin:
        findings = _page_findings(origin, "/", manifest, None, None)
    return [(finding.status is Status.OK, finding.message) for finding in findings]


def test_the_published_stylesheet_inline_passes(tmp_path: Path) -> None:
    verdicts = _style_verdicts(tmp_path, style_text("css/portal.css"))
    assert (True, "carries /static/css/portal.css inline (listed)") in verdicts, verdicts
    assert all(ok for ok, _ in verdicts), verdicts


def test_a_changed_inline_stylesheet_fails(tmp_path: Path) -> None:
    # a portal that hides the warnings the published page shows
    css = style_text("css/portal.css") + ".mode { display: none }"
    verdicts = _style_verdicts(tmp_path, css)
    assert (False, "carries a stylesheet that is not in the manifest") in verdicts, verdicts
