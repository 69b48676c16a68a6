"""cso-envelope/v1: multi-recipient HPKE envelopes with a chunked AES-256-GCM payload.

The format is specified in ``crypto/SPEC.md``; the browser implementation in
``portal/web/static/js/`` reads and writes the same bytes. This package imports
nothing from the rest of the project and touches no files except in its CLI.
"""

from crypto.envelope import (
    EnvelopeInfo,
    Sealer,
    inspect,
    open_bytes,
    open_envelope,
    seal,
    seal_bytes,
)
from crypto.errors import (
    CryptoError,
    HeaderError,
    HeaderMACError,
    NoMatchError,
    PayloadError,
)

__all__ = [
    "CryptoError",
    "EnvelopeInfo",
    "HeaderError",
    "HeaderMACError",
    "NoMatchError",
    "PayloadError",
    "Sealer",
    "inspect",
    "open_bytes",
    "open_envelope",
    "seal",
    "seal_bytes",
]
