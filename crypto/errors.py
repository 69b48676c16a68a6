"""The one exception hierarchy of the crypto package.

Every failure raised by ``crypto`` is a :class:`CryptoError`. The leaves name
the failure class, which is all a caller (or an attacker watching a caller)
learns: the messages never carry key material, plaintext, or the reason a
tag did not verify (SPEC.md §9).
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base type; ``diagnostics()`` is the one-line message for users."""

    #: short stable name of the failure class, as used in the test vectors
    failure_class = "error"

    def diagnostics(self) -> str:
        """Return a one-line, secret-free description for a CLI or a log."""
        detail = str(self) or self.failure_class
        return detail.splitlines()[0]


class HeaderError(CryptoError):
    """The envelope header is malformed, truncated or not version 1."""

    failure_class = "header failure"


class NoMatchError(CryptoError):
    """No recipient stanza could be opened with the given identity."""

    failure_class = "no match"


class HeaderMACError(CryptoError):
    """The header MAC did not verify under the unwrapped data key."""

    failure_class = "MAC failure"


class PayloadError(CryptoError):
    """A payload chunk failed, or the payload was truncated or extended."""

    failure_class = "payload failure"


class KeyFormatError(CryptoError):
    """A public key token, key file or signature blob is malformed."""

    failure_class = "key format failure"


class KeyFileError(CryptoError):
    """An encrypted key file could not be opened (wrong passphrase or damaged)."""

    failure_class = "key file failure"


class DirectoryError(CryptoError):
    """A signed key directory is malformed, badly signed or expired."""

    failure_class = "directory failure"


class ManifestError(CryptoError):
    """A report manifest is malformed, or an attachment does not match it."""

    failure_class = "manifest failure"


class BundleError(CryptoError):
    """A bundle is malformed, truncated, tampered with or signed by an unknown key."""

    failure_class = "bundle failure"


class BatchError(CryptoError):
    """A signed incident batch or a trusted-reviewers file is malformed or untrusted."""

    failure_class = "batch failure"
