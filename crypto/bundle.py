"""Bundles: envelopes carried between the portal and the offline workstation (SPEC.md §15).

Layout::

    "cso-bundle/v1\\n"
    item 1 ‖ item 2 ‖ … ‖ item n            (opaque bytes, usually envelopes)
    manifest                                (UTF-8 JSON, a signed document)
    manifest length                         (8 bytes, big-endian)
    "\\ncso-bundle-end\\n"

The manifest comes last so that a writer streams each item once, hashing it
on the way. Its payload lists every item's size and SHA-256; a reader checks
all of them before anything in the bundle is acted on, so a truncated or
tampered bundle is refused whole.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from crypto import _base64url as base64url
from crypto.errors import BundleError, KeyFormatError
from crypto.keys import KeyKind, PublicKeyToken, SigningKeyPair, parse_public_key, verify_signature

MAGIC = b"cso-bundle/v1\n"
END = b"\ncso-bundle-end\n"
SCHEMA = "cso-bundle/v1"
PAYLOAD_SCHEMA = "cso-bundle-payload/v1"
SIGNING_CONTEXT = b"cso-portal bundle v1\n"
KINDS = frozenset({"inbox", "replies"})
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_ITEMS = 1_000_000
_TRAILER = 8 + len(END)
_COPY = 1024 * 1024
_ID = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_RESERVED = frozenset({"size", "sha256"})


@dataclass(frozen=True)
class BundleItem:
    """One item: its metadata from the manifest and where its bytes lie."""

    index: int
    meta: Mapping[str, Any]
    offset: int
    size: int
    sha256: str


@dataclass(frozen=True)
class Bundle:
    """A bundle whose signature and every item hash have been verified."""

    path: Path
    kind: str
    bundle_id: str
    created_at: str
    signer: PublicKeyToken
    fields: Mapping[str, Any]
    items: tuple[BundleItem, ...]

    def read_item(self, item: BundleItem) -> bytes:
        """The item's bytes, hashed again: the file may have changed since it was opened."""
        with self.path.open("rb") as handle:
            handle.seek(item.offset)
            data = handle.read(item.size)
        digest = hashlib.sha256(data).hexdigest()
        if len(data) != item.size or not hmac.compare_digest(digest, item.sha256):
            raise BundleError("the bundle file changed while it was being read")
        return data


def _unb64url(value: Any) -> bytes:
    decoded = base64url.decode(value)
    if decoded is None:
        raise BundleError("bundle manifest is malformed")
    return decoded


class BundleWriter:
    """Stream items into a bundle, then sign its manifest with :meth:`finish`."""

    def __init__(
        self,
        out: BinaryIO,
        signer: SigningKeyPair,
        kind: str,
        fields: Mapping[str, Any] | None = None,
        *,
        bundle_id: str | None = None,
    ) -> None:
        if kind not in KINDS:
            raise BundleError(f"unknown bundle kind {kind!r}")
        self._out = out
        self._signer = signer
        self._kind = kind
        self._fields = dict(fields or {})
        self._items: list[dict[str, Any]] = []
        self.bundle_id = bundle_id or secrets.token_hex(16)
        out.write(MAGIC)

    def add(self, meta: Mapping[str, Any], source: BinaryIO | bytes) -> str:
        """Append one item, described by ``meta``, from bytes or a stream; return its SHA-256."""
        if _RESERVED & set(meta):
            raise BundleError("item metadata must not set size or sha256")
        digest, size = hashlib.sha256(), 0
        if isinstance(source, bytes):
            chunks: Iterator[bytes] = iter((source,))
        else:
            chunks = iter(lambda: source.read(_COPY), b"")
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            self._out.write(chunk)
        self._items.append({**meta, "size": size, "sha256": digest.hexdigest()})
        return digest.hexdigest()

    def finish(self, created_at: datetime | None = None) -> str:
        """Write the signed manifest and the trailer; return the bundle id."""
        moment = (created_at or datetime.now(UTC)).astimezone(UTC)
        payload = {
            **self._fields,
            "schema": PAYLOAD_SCHEMA,
            "kind": self._kind,
            "bundle_id": self.bundle_id,
            "created_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "items": self._items,
        }
        payload_bytes = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        document = {
            "schema": SCHEMA,
            "signer": str(self._signer.token),
            "payload": base64url.encode(payload_bytes),
            "signature": base64url.encode(self._signer.sign(SIGNING_CONTEXT + payload_bytes)),
        }
        manifest = json.dumps(document, separators=(",", ":")).encode()
        self._out.write(manifest + len(manifest).to_bytes(8, "big") + END)
        return self.bundle_id


def _read_manifest(handle: BinaryIO, total: int) -> tuple[bytes, int]:
    """Return the manifest bytes and where they start; §15.1 layout checks."""
    if total < len(MAGIC) + _TRAILER or handle.read(len(MAGIC)) != MAGIC:
        raise BundleError("not a cso-bundle/v1 file (or it is truncated)")
    handle.seek(total - _TRAILER)
    trailer = handle.read(_TRAILER)
    if trailer[8:] != END:
        raise BundleError("the bundle is truncated (its end marker is missing)")
    length = int.from_bytes(trailer[:8], "big")
    start = total - _TRAILER - length
    if length > MAX_MANIFEST_BYTES or start < len(MAGIC):
        raise BundleError("the bundle is truncated or its manifest length is wrong")
    handle.seek(start)
    return handle.read(length), start


def _verified_payload(manifest: bytes, trusted: Collection[PublicKeyToken]) -> dict[str, Any]:
    try:
        document = json.loads(manifest.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BundleError("bundle manifest is not JSON") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise BundleError("bundle manifest has the wrong schema")
    try:
        signer = parse_public_key(str(document.get("signer", "")), KeyKind.SIGNING)
    except KeyFormatError:
        raise BundleError("bundle signer is malformed") from None
    if signer not in trusted:
        raise BundleError(f"the bundle is signed by a key you do not trust ({signer.fingerprint})")
    payload_bytes = _unb64url(document.get("payload"))
    if not verify_signature(
        signer.key, SIGNING_CONTEXT + payload_bytes, _unb64url(document.get("signature"))
    ):
        raise BundleError("the bundle signature does not verify")
    try:
        payload = json.loads(payload_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BundleError("bundle manifest payload is not JSON") from None
    if not isinstance(payload, dict):
        raise BundleError("bundle manifest payload is malformed")
    payload["_signer"] = signer
    return payload


def _check_payload(payload: dict[str, Any]) -> None:
    kind = payload.get("kind")
    # a signed payload may still hold any JSON type: check it is text before the set
    # lookup, which raises TypeError for a list or an object (unhashable)
    if payload.get("schema") != PAYLOAD_SCHEMA or not isinstance(kind, str) or kind not in KINDS:
        raise BundleError("bundle manifest payload has the wrong schema")
    if not isinstance(payload.get("bundle_id"), str) or not _ID.fullmatch(payload["bundle_id"]):
        raise BundleError("bundle id is malformed")
    if not isinstance(payload.get("created_at"), str) or not _TIME.fullmatch(payload["created_at"]):
        raise BundleError("bundle time is malformed")
    items = payload.get("items")
    if not isinstance(items, list) or len(items) > MAX_ITEMS:
        raise BundleError("bundle item list is malformed")
    for item in items:
        size, digest = (item.get("size"), item.get("sha256")) if isinstance(item, dict) else (0, 0)
        if (
            not isinstance(size, int)
            or isinstance(size, bool)
            or size < 0
            or not isinstance(digest, str)
            or not _SHA256.fullmatch(digest)
        ):
            raise BundleError("a bundle item entry is malformed")


def open_bundle(path: Path, trusted: Collection[PublicKeyToken]) -> Bundle:
    """Verify a bundle file completely (§15.1, §15.2); raise :class:`BundleError` if not."""
    with path.open("rb") as handle:
        total = os.fstat(handle.fileno()).st_size
        manifest, manifest_start = _read_manifest(handle, total)
        payload = _verified_payload(manifest, trusted)
        signer: PublicKeyToken = payload.pop("_signer")
        _check_payload(payload)
        entries: list[dict[str, Any]] = payload["items"]
        if len(MAGIC) + sum(e["size"] for e in entries) != manifest_start:
            raise BundleError("the bundle's items do not add up to its length (truncated?)")
        handle.seek(len(MAGIC))
        items, offset = [], len(MAGIC)
        for index, entry in enumerate(entries):
            digest, left = hashlib.sha256(), entry["size"]
            while left:
                chunk = handle.read(min(left, _COPY))
                if not chunk:
                    raise BundleError("the bundle is truncated")
                digest.update(chunk)
                left -= len(chunk)
            if not hmac.compare_digest(digest.hexdigest(), entry["sha256"]):
                raise BundleError(f"bundle item {index + 1} does not match its manifest entry")
            meta = {k: v for k, v in entry.items() if k not in _RESERVED}
            items.append(BundleItem(index, meta, offset, entry["size"], entry["sha256"]))
            offset += entry["size"]
    standard = {"schema", "kind", "bundle_id", "created_at", "items"}
    return Bundle(
        path=path,
        kind=payload["kind"],
        bundle_id=payload["bundle_id"],
        created_at=payload["created_at"],
        signer=signer,
        fields={k: v for k, v in payload.items() if k not in standard},
        items=tuple(items),
    )
