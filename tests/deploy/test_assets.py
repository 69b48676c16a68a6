"""``portal verify-assets``: what the live stack serves to browsers, against published hashes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from crypto.keyfile import KeyBundle
from portal.cli.main import main as portal_main
from portal.deploy.assets import STATIC_DIR, asset_manifest_text
from tests.deploy.stack import Stack


def verify(
    stack: Stack, manifest: Path | None, capsys: pytest.CaptureFixture[str], *more: str
) -> tuple[int, str]:
    """Run ``portal verify-assets`` against the TLS listener."""
    argv = ["verify-assets", "--url", stack.host.https_url, "--ca-file", str(stack.host.ca_file)]
    if manifest is not None:
        argv += ["--manifest", str(manifest)]
    argv += more
    code = portal_main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_manifest_is_sha256sum_of_the_static_files(tmp_path: Path) -> None:
    assert portal_main(["asset-manifest", "--out", str(tmp_path / "SHA256SUMS")]) == 0
    lines = (tmp_path / "SHA256SUMS").read_text().splitlines()
    assert lines == asset_manifest_text().splitlines()
    script = STATIC_DIR / "bundle" / "report-page.js"
    expected = f"{hashlib.sha256(script.read_bytes()).hexdigest()}  static/bundle/report-page.js"
    assert expected in lines
    assert len(lines) == sum(1 for p in STATIC_DIR.rglob("*") if p.is_file())


def test_the_live_portal_serves_the_published_code(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = verify(stack, None, capsys)
    assert code == 0, output
    assert "ok   asset: /static/bundle/report-page.js matches" in output
    assert "ok   page /: loads /static/bundle/report-page.js (listed)" in output
    assert "ok   page /: CSP: scripts from this origin only" in output


def test_the_live_portal_pins_the_published_organisation_key(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    published = (stack.host.data_dir / "organisation.pub").read_text().strip()
    code, output = verify(stack, None, capsys, "--organisation-key", published)
    assert code == 0, output
    assert "ok   page /: pins the expected organisation key" in output
    other = str(KeyBundle.new_organisation().signing.token)
    code, output = verify(stack, None, capsys, "--organisation-key", other)
    assert code == 2
    assert "FAIL page /: pins another organisation key" in output


def test_a_changed_file_fails(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "published"
    lines = asset_manifest_text().splitlines()
    tampered = [
        ("0" * 64 + line[64:]) if line.endswith("static/js/envelope.js") else line for line in lines
    ]
    manifest.write_text("\n".join(tampered) + "\n")
    code, output = verify(stack, manifest, capsys)
    assert code == 2
    assert "FAIL asset: /static/js/envelope.js differs from the published code" in output


def test_a_script_missing_from_the_manifest_fails(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "published"
    kept = [line for line in asset_manifest_text().splitlines() if "bundle/report-page" not in line]
    manifest.write_text("\n".join(kept) + "\n")
    code, output = verify(stack, manifest, capsys)
    assert code == 2
    assert (
        "FAIL page /: loads '/static/bundle/report-page.js', which is not in the manifest" in output
    )


def test_a_malformed_manifest_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "published"
    manifest.write_text("not a manifest\n")
    code = portal_main(
        ["verify-assets", "--url", "http://127.0.0.1:9", "--manifest", str(manifest)]
    )
    assert code == 2
    assert (
        capsys.readouterr().err
        == f"portal: error: {manifest} line 1 is not 'SHA256  static/PATH'\n"
    )
