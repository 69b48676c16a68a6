"""The tus 1.0.0 headers the portal reads and writes (``tus.py`` has the routes).

What the server says of itself (version, extensions, checksum algorithms),
the answer without a body, and the parsing of the request headers a route
needs: a byte count, the draft named in ``Upload-Metadata`` and the
``Upload-Checksum`` a PATCH is to match. Anything malformed is a 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from typing import Any

from flask import Response, request

from portal.storage import pending
from portal.web.resumable import NUMBER, Refusal

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,expiration,termination,checksum"
CHECKSUMS: dict[str, Callable[[], Any]] = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
MAX_METADATA = 4096
_METADATA_KEY = re.compile(r"[\x21-\x2b\x2d-\x7e]{1,64}")  # printable, no space or comma


class Empty(Response):
    """An answer with no body, and so no ``Content-Type`` (it would describe nothing)."""

    default_mimetype = None


def header_number(name: str) -> int:
    """The request header ``name`` as a whole number of bytes; 400 if it is not one."""
    raw = request.headers.get(name, "")
    if not NUMBER.fullmatch(raw):
        raise Refusal(400, f"{name} must be a whole number of bytes.")
    return int(raw)


def draft_in_metadata() -> str:
    """The draft id in ``Upload-Metadata``; every other key is ignored and never kept."""
    raw = request.headers.get("Upload-Metadata", "")
    if len(raw) > MAX_METADATA:
        raise Refusal(400, "Upload-Metadata is too long.")
    values: dict[str, bytes] = {}
    for pair in raw.split(",") if raw.strip() else []:
        fields = pair.strip().split(" ")
        if not _METADATA_KEY.fullmatch(fields[0]) or len(fields) > 2 or fields[0] in values:
            raise Refusal(400, "Upload-Metadata is malformed.")
        try:
            values[fields[0]] = base64.b64decode(fields[1], validate=True) if fields[1:] else b""
        except (binascii.Error, ValueError):
            raise Refusal(400, "Upload-Metadata values must be base64.") from None
    draft = values.get("draft", b"").decode("ascii", errors="replace")
    if not pending.is_id(draft):
        raise Refusal(400, "Upload-Metadata must name the draft that /submit/begin opened.")
    return draft


def expected_checksum() -> tuple[str, bytes] | None:
    """The algorithm and digest ``Upload-Checksum`` names, or None without one; 400 if malformed."""
    raw = request.headers.get("Upload-Checksum")
    if raw is None:
        return None
    algorithm, _, encoded = raw.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise Refusal(400, "Upload-Checksum: this portal checks sha1 and sha256.")
    try:
        expected = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        expected = b""
    if len(expected) != CHECKSUMS[algorithm]().digest_size:
        raise Refusal(400, "Upload-Checksum is malformed.")
    return algorithm, expected
