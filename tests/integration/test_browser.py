"""The browser modules in real headless Chromium, under the portal's CSP.

Chromium (Debian's package) loads the modules from a loopback server that
sends the strict Content-Security-Policy the portal will use. The page seals
a real File, chosen through a file input, to the reviewers of a key
directory signed by Python; Python opens it. Python seals; the page opens.
No request may leave the origin and no console error may appear.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crypto.directory import sign_directory
from crypto.envelope import CHUNK_SIZE, open_bytes, seal_bytes
from crypto.keys import EncryptionKeyPair, SigningKeyPair
from tests.integration.chromium import chromium
from tests.integration.loopback import static_origin

CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HARNESS = Path(__file__).with_name("browser")


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    pages = {"/": HARNESS / "harness.html", "/harness.js": HARNESS / "harness.js"}
    with static_origin(pages, CSP) as url:
        yield url


@pytest.fixture(scope="module")
def page(origin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    problems: list[str] = []
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on(
            "request",
            lambda r: r.url.startswith(origin) or problems.append(f"left the origin: {r.url}"),
        )
        page.goto(origin + "/")
        page.wait_for_selector("#ready:has-text('ready')", state="attached")
        page.problems = problems
        yield page
    assert problems == []


@pytest.fixture(scope="module")
def reviewers() -> tuple[SigningKeyPair, list[EncryptionKeyPair], bytes]:
    org = SigningKeyPair.generate()
    keys = [EncryptionKeyPair.generate() for _ in range(3)]
    directory = sign_directory(
        org,
        [(f"reviewer-{i}", k.token) for i, k in enumerate(keys, 1)],
        serial=1,
        issued_at=datetime.now(UTC) - timedelta(minutes=1),
        valid_for=timedelta(days=30),
    )
    return org, keys, directory


@pytest.mark.parametrize("size", [0, 1000, CHUNK_SIZE, 3 * 1024 * 1024 + 17])
def test_browser_seals_a_chosen_file_python_opens(
    page: Any,
    reviewers: tuple[SigningKeyPair, list[EncryptionKeyPair], bytes],
    tmp_path: Path,
    size: int,
) -> None:
    org, keys, directory = reviewers
    data = hashlib.shake_256(str(size).encode()).digest(size)
    chosen = tmp_path / "photo.jpg"
    chosen.write_bytes(data)
    page.set_input_files("#attachment", str(chosen))
    result = page.evaluate(
        "([d, s]) => window.harness.sealChosenFile(d, s)", [directory.decode(), str(org.token)]
    )
    assert "error" not in result, result
    envelope = base64.b64decode(result["envelope"])
    for key in keys:
        assert open_bytes(envelope, key) == data
    assert page.problems == []


def test_browser_refuses_to_seal_to_a_forged_directory(
    page: Any, reviewers: tuple[SigningKeyPair, list[EncryptionKeyPair], bytes], tmp_path: Path
) -> None:
    org = reviewers[0]
    forged = sign_directory(
        SigningKeyPair.generate(),
        [("attacker", EncryptionKeyPair.generate().token)],
        serial=2,
        issued_at=datetime.now(UTC),
        valid_for=timedelta(days=1),
    )
    chosen = tmp_path / "note.txt"
    chosen.write_bytes(b"boarded at 02:10")
    page.set_input_files("#attachment", str(chosen))
    result = page.evaluate(
        "([d, s]) => window.harness.sealChosenFile(d, s)", [forged.decode(), str(org.token)]
    )
    assert result.get("error") == "DirectoryError"
    assert "envelope" not in result


@pytest.mark.parametrize("size", [0, 5, CHUNK_SIZE + 1, 1024 * 1024])
def test_python_seals_browser_opens(page: Any, size: int) -> None:
    key = EncryptionKeyPair.generate()
    data = hashlib.shake_256(b"python" + str(size).encode()).digest(size)
    envelope = seal_bytes(data, [key.public])
    result = page.evaluate(
        "([e, k]) => window.harness.open(e, k)",
        [base64.b64encode(envelope).decode(), key.private.hex()],
    )
    assert base64.b64decode(result["plaintext"]) == data


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(0, "header failure"), (20, "MAC failure"), (-1, "payload failure")],
)
def test_browser_names_the_failure_class(page: Any, offset: int, expected: str) -> None:
    key = EncryptionKeyPair.generate()
    envelope = bytearray(seal_bytes(b"x" * 5000, [key.public]))
    envelope[offset] ^= 0x01
    result = page.evaluate(
        "([e, k]) => window.harness.open(e, k)",
        [base64.b64encode(bytes(envelope)).decode(), key.private.hex()],
    )
    assert result == {"failureClass": expected}
