"""Bundles (SPEC.md §15.1): a signed payload of the wrong JSON types is refused, not a crash.

The signature only says who wrote the payload. A portal or reviewer tool with
a bug, or a stolen reviewer key, can sign anything, so every field of the
payload is checked for its type before it is compared with or looked up in
anything (a list is unhashable: ``[] in frozenset()`` raises TypeError).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from crypto import _base64url as base64url
from crypto.bundle import END, MAGIC, PAYLOAD_SCHEMA, SCHEMA, SIGNING_CONTEXT, open_bundle
from crypto.errors import BundleError
from crypto.keys import SigningKeyPair

REVIEWER = SigningKeyPair.generate()


def _signed(path: Path, payload: dict[str, Any], items: bytes = b"") -> Path:
    """Frame ``payload`` as a bundle correctly signed by a trusted key."""
    payload_bytes = json.dumps(payload).encode()
    manifest = json.dumps(
        {
            "schema": SCHEMA,
            "signer": str(REVIEWER.token),
            "payload": base64url.encode(payload_bytes),
            "signature": base64url.encode(REVIEWER.sign(SIGNING_CONTEXT + payload_bytes)),
        }
    ).encode()
    path.write_bytes(MAGIC + items + manifest + len(manifest).to_bytes(8, "big") + END)
    return path


def _payload(**changes: Any) -> dict[str, Any]:
    payload = {
        "schema": PAYLOAD_SCHEMA,
        "kind": "replies",
        "bundle_id": "ab" * 16,
        "created_at": "2026-11-21T08:00:00Z",
        "items": [{"type": "reply", "size": 2, "sha256": hashlib.sha256(b"ok").hexdigest()}],
        "acknowledges": [],
    }
    payload.update(changes)
    return payload


def test_the_well_typed_payload_opens(tmp_path: Path) -> None:
    """The control: the same framing with a proper kind is accepted."""
    bundle = open_bundle(_signed(tmp_path / "b", _payload(), b"ok"), {REVIEWER.token})
    assert bundle.kind == "replies"
    assert bundle.fields == {"acknowledges": []}


@pytest.mark.parametrize("kind", [[], {}, None, 1, True, ["replies"], {"replies": 1}])
def test_a_kind_of_another_json_type_is_refused(tmp_path: Path, kind: Any) -> None:
    """A correctly signed replies bundle with "kind": [] once raised TypeError."""
    path = _signed(tmp_path / "b", _payload(kind=kind), b"ok")
    with pytest.raises(BundleError, match="wrong schema"):
        open_bundle(path, {REVIEWER.token})


@pytest.mark.parametrize("schema", [[], {}, None, 1])
def test_a_schema_of_another_json_type_is_refused(tmp_path: Path, schema: Any) -> None:
    """The same check, for the payload's schema."""
    path = _signed(tmp_path / "b", _payload(schema=schema), b"ok")
    with pytest.raises(BundleError, match="wrong schema"):
        open_bundle(path, {REVIEWER.token})
