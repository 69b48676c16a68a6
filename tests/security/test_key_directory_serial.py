"""A key directory whose serial only one implementation accepts (finding 10c).

The browser (``portal/web/static/js/directory.js``) and Python (``crypto/directory.py``)
must accept exactly the same directories (SPEC §10.4): a serial written
``1.0`` or ``1e3`` is the number 1 or 1000 to ``JSON.parse`` but a float to
Python. A signer that wrote one would have browsers and reviewer tools
disagree about which directory is newer. Both must refuse every serial that
is not written as a plain non-negative integer.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crypto.directory import SIGNING_CONTEXT, verify_directory
from crypto.errors import DirectoryError
from crypto.keys import EncryptionKeyPair, SigningKeyPair
from tests.conftest import ROOT

ORGANISATION = SigningKeyPair.generate()
REVIEWER = EncryptionKeyPair.generate()
NOW = "2026-11-21T08:00:00Z"
#: serials that JavaScript would read as a whole number, written otherwise
ODD_SERIALS = ["1.0", "1e3", "1E3", "1.5e1", "10e-1", "-0", "3.000"]

_NODE_CHECK = """
import { readFileSync } from 'node:fs';
import { verifyDirectory } from '%s';
const { signer, now, documents } = JSON.parse(readFileSync(process.argv[1], 'utf8'));
for (const text of documents) {
  try {
    const d = await verifyDirectory(text, signer, new Date(now));
    console.log(`accepted serial ${d.serial}`);
  } catch (error) {
    console.log(`refused: ${error.name}`);
  }
}
"""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _directory(serial: str, *, payload_extra: str = "", document_extra: str = "") -> str:
    """A directory signed by the organisation, its serial written exactly as ``serial``.

    ``payload_extra`` and ``document_extra`` are JSON text added, as written,
    after the last field of the signed payload or of the document around it.
    """
    payload = (
        '{"schema":"cso-key-directory-payload/v1","serial":' + serial + ","
        '"issued_at":"2026-11-20T08:00:00Z","expires_at":"2027-01-20T08:00:00Z",'
        '"reviewers":[{"label":"reviewer-1","encryption_key":"'
        + str(REVIEWER.token)
        + '"}]'
        + payload_extra
        + "}"
    ).encode()
    document = {
        "schema": "cso-key-directory/v1",
        "signer": str(ORGANISATION.token),
        "payload": _b64(payload),
        "signature": _b64(ORGANISATION.sign(SIGNING_CONTEXT + payload)),
    }
    return json.dumps(document)[:-1] + document_extra + "}"


def _browser_verdicts(documents: list[str], tmp_path: Path) -> list[str]:
    node = shutil.which("node")
    assert node is not None, "make test installs Node.js"
    module = (ROOT / "portal" / "web" / "static" / "js" / "directory.js").as_uri()
    request = tmp_path / "directories.json"
    request.write_text(
        json.dumps({"signer": str(ORGANISATION.token), "now": NOW, "documents": documents})
    )
    result = subprocess.run(
        [node, "--input-type=module", "-e", _NODE_CHECK % module, str(request)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return result.stdout.splitlines()


def _python_verdict(document: str) -> str:
    now = datetime.strptime(NOW, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    try:
        directory = verify_directory(document.encode(), ORGANISATION.token, now)
    except DirectoryError as error:
        return f"refused: {type(error).__name__}"
    return f"accepted serial {directory.serial}"


def test_a_plain_integer_serial_is_accepted_by_both(tmp_path: Path) -> None:
    document = _directory("7")
    assert _python_verdict(document) == "accepted serial 7"
    assert _browser_verdicts([document], tmp_path) == ["accepted serial 7"]


@pytest.mark.parametrize("written", ODD_SERIALS)
def test_a_serial_written_as_a_fraction_exponent_or_signed_zero_is_refused_by_python(
    written: str,
) -> None:
    assert _python_verdict(_directory(written)) == "refused: DirectoryError"


def test_a_serial_written_as_a_fraction_exponent_or_signed_zero_is_refused_by_the_browser(
    tmp_path: Path,
) -> None:
    verdicts = _browser_verdicts([_directory(written) for written in ODD_SERIALS], tmp_path)
    assert dict(zip(ODD_SERIALS, verdicts, strict=True)) == dict.fromkeys(
        ODD_SERIALS, "refused: DirectoryError"
    )


#: fields a signer could add that one JSON parser chokes on and the other does not:
#: Python's int() stops at 4,300 digits and its decoder at its recursion limit
EXTRA_FIELDS = {
    "an unknown field": ',"note":"hello"',
    "an unknown field holding a 5,000-digit integer": ',"note":' + "9" * 5000,
    "an unknown field nested 3,000 arrays deep": ',"note":' + "[" * 3000 + "]" * 3000,
    "an unknown field holding a 17-digit integer": ',"note":12345678901234567',
    "an unknown field nested 3,000 objects deep": ',"note":' + '{"a":' * 3000 + "1" + "}" * 3000,
}
HOSTILE = {
    **{f"payload with {name}": _directory("7", payload_extra=extra)
       for name, extra in EXTRA_FIELDS.items()},
    **{f"document with {name}": _directory("7", document_extra=extra)
       for name, extra in EXTRA_FIELDS.items()},
}  # fmt: skip


@pytest.mark.parametrize("name", HOSTILE)
def test_signing_a_directory_with_a_field_no_verifier_knows_is_refused_by_python(
    name: str,
) -> None:
    assert _python_verdict(HOSTILE[name]) == "refused: DirectoryError"


def test_signing_a_directory_with_a_field_no_verifier_knows_is_refused_by_the_browser(
    tmp_path: Path,
) -> None:
    verdicts = _browser_verdicts(list(HOSTILE.values()), tmp_path)
    assert dict(zip(HOSTILE, verdicts, strict=True)) == dict.fromkeys(
        HOSTILE, "refused: DirectoryError"
    )
